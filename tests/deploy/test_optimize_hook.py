"""tools/test.py --optimize: the settings file and the hook that applies
them to the loaded model."""
import json
import types

import pytest
import torch

from mmconvmlp import ConvMLP
from mmconvmlp.deploy.optimize_hook import (OptimizeForInferenceHook,
                                            read_settings)
from mmconvmlp.ops import FusedWinogradConv2d


def test_reads_tunes_winner_and_plain_settings(tmp_path):
    winner = tmp_path / 'winner.json'
    winner.write_text(json.dumps(dict(
        path='optimize, probed', optimize_for_inference=dict(
            winograd=False, channels_last=True, fused_mlp=True, bf16=False,
            compile=False))))
    assert read_settings(str(winner))['winograd'] is False
    plain = tmp_path / 'plain.json'
    plain.write_text('{"bf16": true, "probe": [64, 96]}')
    assert read_settings(str(plain)) == dict(bf16=True, probe=(64, 96))
    eager = tmp_path / 'eager.json'  # an eager winner: no settings
    eager.write_text('{"path": "eager", "optimize_for_inference": null}')
    assert read_settings(str(eager)) == {}


@pytest.mark.parametrize('text, error, message', [
    ('{"winograd": false, "fast": true}', KeyError,
     r"unknown optimize_for_inference settings \['fast'\]"),
    ('[1, 2]', TypeError, 'expected a JSON object'),
    ('{"winograd": ', ValueError, 'cannot read a JSON object'),
])
def test_bad_settings_are_named(tmp_path, text, error, message):
    path = tmp_path / 'settings.json'
    path.write_text(text)
    with pytest.raises(error, match=message) as info:
        read_settings(str(path))
    assert 'settings.json' in str(info.value)


def test_hook_swaps_the_loaded_model_for_its_optimised_copy():
    torch.manual_seed(0)
    model = ConvMLP('s').eval()
    logged = []
    runner = types.SimpleNamespace(model=model, logger=types.SimpleNamespace(
        info=logged.append))
    OptimizeForInferenceHook(winograd=True).before_test(runner)
    assert runner.model is not model
    assert any(isinstance(m, FusedWinogradConv2d)
               for m in runner.model.modules())
    assert 'winograd' in logged[0]
    with pytest.raises(KeyError, match='unknown'):
        OptimizeForInferenceHook(winogard=True)
