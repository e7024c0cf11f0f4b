"""Measuring models: the logic behind ``tools/analysis_tools/``.

* :mod:`.measure`: latency (paths timed in turns), peak memory, errors;
* :mod:`.tables`: Markdown tables and CSV files of the results;
* :mod:`.weights`: non-trivial weights for models without a checkpoint;
* :mod:`.complexity`: FLOPs and parameters, whole and by part;
* :mod:`.featmaps`: pictures of the feature maps;
* :mod:`.backbone_benchmark`, :mod:`.predict_benchmark`,
  :mod:`.seg_benchmark` (with :mod:`.seg_report`): the backbone,
  whole-model and segmentation benchmarks.

Nothing is imported here: each tool imports the module it calls.
"""
