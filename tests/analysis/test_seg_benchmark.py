"""Pieces of the segmentation benchmark that need no measurement."""
import pytest

from mmconvmlp.analysis.seg_benchmark import (BenchmarkError, locate_config,
                                              parse_spec, reported_miou)
from mmconvmlp.analysis.seg_report import pareto_front


@pytest.mark.parametrize('spec,expected', [
    ('semantic_fpn_convmlp_s', ('semantic_fpn_convmlp_s', None)),
    ('a/b.py:c.pth', ('a/b.py', 'c.pth')),
    ('mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
     ('mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', None)),
    ('mmseg::sem_fpn/x.py:/ckpt/y.pth', ('mmseg::sem_fpn/x.py', '/ckpt/y.pth')),
    ('ours:w.pth', ('ours', 'w.pth')),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize('spec,expected', [
    ('mmseg::sem_fpn/x:w.pth', ('mmseg::sem_fpn/x', 'w.pth')),
    ('mmseg::sem_fpn/x', ('mmseg::sem_fpn/x', None)),
    ('a:b:c', ('a', 'b:c')),  # then: checkpoint b:c not found
])
def test_parse_spec_with_odd_colons(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize('spec', [':', '::', 'x.py:', ':w.pth', '', 'a:'])
def test_unreadable_specs_are_one_line(spec):
    with pytest.raises(BenchmarkError, match='cannot read model spec'):
        parse_spec(spec)


@pytest.mark.parametrize('spec,message', [
    ('a:b:c', "unknown config 'a'"),
    ('semantic_fpn_convmlp_s:no/such:file.pth',
     'checkpoint no/such:file.pth not found'),
    ('mmseg::', "unknown config 'mmseg'"),
])
def test_odd_specs_become_error_rows(spec, message, tmp_path):
    from mmconvmlp.analysis.seg_benchmark import make_jobs
    options = dict(batch=1, device='cpu', repeats=1, warmup=0, images=None,
                   dataset=False, out_dir=str(tmp_path), backends=None)
    jobs, rows = make_jobs([spec], options)
    assert jobs == [] and len(rows) == 1
    assert message in rows[0]['error'] and '\n' not in rows[0]['error']


def test_unknown_config_is_one_clear_line():
    with pytest.raises(BenchmarkError, match="unknown config 'nonsense_x'"):
        locate_config('nonsense_x')
    with pytest.raises(BenchmarkError, match='does not exist'):
        locate_config('mmseg::sem_fpn/no_such_config.py')


def test_reported_miou_from_metafiles():
    """mmseg's metafile.yaml and ours, each beside its configs."""
    assert reported_miou(locate_config(
        'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py')) == 37.49
    assert reported_miou(locate_config(
        'mmseg::twins/twins_svt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512.py')
    ) == 44.47
    assert reported_miou(locate_config('semantic_fpn_convmlp_m')) == 38.6
    assert reported_miou(locate_config(
        'semantic_fpn_convmlp_s_builtin')) is None


def test_pareto_front():
    points = [(10, 30), (20, 35), (15, 29), (30, 34), (40, 40), (40, 41)]
    assert pareto_front(points) == [(10, 30), (20, 35), (40, 41)]
