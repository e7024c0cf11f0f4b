"""The segmentation benchmark's plots keep every label inside its axes
(and so inside the figure)."""
import matplotlib
import pytest

from mmconvmlp.analysis.seg_report import cost_figure, pareto_figure

matplotlib.use('Agg')

#: The default comparison as docs/benchmark_seg_pareto.png shows it: the
#: slowest model has a long name.
ROWS = [dict(model=name, size='512x512', mode='forward', latency_ms=latency,
             reported_miou=miou, whole_mparams=params, whole_gflops=flops)
        for name, latency, miou, params, flops in [
            ('semantic_fpn_convmlp_s', 780.0, 35.8, 12.8, 34.0),
            ('semantic_fpn_convmlp_m', 836.0, 38.6, 21.2, 42.1),
            ('fpn_r50_4xb4-160k_ade20k-512x512', 1040.0, 37.5, 28.5, 45.6),
            ('fpn_r101_4xb4-160k_ade20k-512x512', 1098.0, 39.4, 47.5, 65.1),
            ('twins_svt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512', 1049.0,
             44.5, 28.3, 40.0),
            ('twins_pcpvt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512', 1355.0,
             43.3, 28.4, 40.8),
            ('semantic_fpn_convmlp_l', 1413.0, 40.0, 46.3, 73.5)]]


@pytest.mark.parametrize('figure', [pareto_figure, cost_figure])
def test_every_label_stays_inside_its_axes(figure):
    import matplotlib.pyplot as plt
    fig = figure(ROWS, 'title')
    fig.set_dpi(120)  # as saved
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert sum(len(ax.texts) for ax in fig.axes) == len(ROWS) * len(fig.axes)
    for ax in fig.axes:
        bounds = ax.get_window_extent(renderer)
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            assert bounds.x0 <= box.x0 and box.x1 <= bounds.x1, (
                text.get_text())
            assert bounds.y0 <= box.y0 and box.y1 <= bounds.y1, (
                text.get_text())
    plt.close(fig)
