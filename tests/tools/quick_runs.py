"""``--cfg-options`` shared by the tools' end-to-end tests."""

#: No dataloader worker processes: tiny runs start faster and stay in one
#: process (which the kill/resume test needs for exact random states).
NO_WORKERS = [
    f'{split}_dataloader.{key}' for key in ('num_workers=0',
                                            'persistent_workers=False')
    for split in ('train', 'val', 'test')
]
#: An untrained model's scores are low: keep every box, so that the COCO
#: metric has something to count.
KEEP_ALL_BOXES = ['model.test_cfg.score_thr=0.0']
