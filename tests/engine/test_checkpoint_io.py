"""mmengine's checkpoint reads and writes, once mmconvmlp routes them."""
import os

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

from mmconvmlp.checkpoint import CheckpointError
from mmconvmlp.engine import AtomicLocalBackend, install_checkpoint_io


@pytest.fixture(autouse=True)
def routed(restore_mmengine_io):
    """Switch the routing on for one test (mmengine is restored after)."""
    assert install_checkpoint_io() is True
    assert install_checkpoint_io() is False  # once is enough


def test_mmengine_reads_its_own_checkpoints(tmp_path):
    """What stock mmengine 0.10.7 cannot do on torch >= 2.6 (resume)."""
    hub = MessageHub.get_instance('test_checkpoint_io')
    for value in (3.0, 2.0, 1.0):
        hub.update_scalar('train/loss', value)
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'meta': {'epoch': 1, 'seed': np.int64(7)},
                     'state_dict': {'w': torch.ones(2)},
                     'message_hub': hub.state_dict()}, path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    restored = MessageHub.get_instance('restored')
    restored.load_state_dict(ckpt['message_hub'])
    assert restored.get_scalar('train/loss').mean() == pytest.approx(2.0)
    assert ckpt['meta']['seed'] == 7


class _RunsCode:

    def __reduce__(self):
        return (os.system, (f'touch {os.environ["PWNED_MARKER"]}', ))


def test_mmengine_refuses_code_in_checkpoints(tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    monkeypatch.setenv('PWNED_MARKER', str(marker))
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _RunsCode()}, path)
    with pytest.raises(CheckpointError, match='refused to load'):
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


def test_remote_checkpoints_are_read_the_same_safe_way(tmp_path,
                                                       monkeypatch):
    """http(s) checkpoints go through the hub cache and the safe loader
    (the OneDL fork's own http loader would retry a refused file
    unsafely); offline the error says what to do."""
    marker = tmp_path / 'pwned'
    monkeypatch.setenv('PWNED_MARKER', str(marker))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    (tmp_path / 'checkpoints').mkdir()
    torch.save({'state_dict': {}, 'x': _RunsCode()},
               tmp_path / 'checkpoints' / 'evil.pth')
    with pytest.raises(CheckpointError, match='refused to load'):
        _load_checkpoint('https://example.invalid/evil.pth')
    assert not marker.exists()
    torch.save({'state_dict': {'w': torch.ones(1)}},
               tmp_path / 'checkpoints' / 'good.pth')
    assert _load_checkpoint('http://example.invalid/good.pth')[
        'state_dict']['w'].item() == 1
    with pytest.raises(CheckpointError, match='may be offline'):
        _load_checkpoint('https://example.invalid/missing.pth')


def test_getattr_allowlist_is_narrow(tmp_path):
    """The restricted getattr serves HistoryBuffer's statistics only."""

    class _Sneaky:

        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    path = str(tmp_path / 'sneaky.pth')
    torch.save({'x': _Sneaky()}, path)
    with pytest.raises(CheckpointError, match='refused'):
        _load_checkpoint(path, map_location='cpu')


def test_missing_checkpoint_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        _load_checkpoint(str(tmp_path / 'nothing.pth'))


def test_local_writes_are_atomic(tmp_path, monkeypatch):
    backend = get_file_backend(str(tmp_path / 'x.pth'))
    assert isinstance(backend, AtomicLocalBackend)
    target = tmp_path / 'epoch_1.pth'
    backend.put(b'complete checkpoint', target)
    assert target.read_bytes() == b'complete checkpoint'

    def crash(fd):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'half of a new one', target)
    assert target.read_bytes() == b'complete checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']
    monkeypatch.undo()
    backend.put_text('epoch_1.pth', tmp_path / 'last_checkpoint')
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_1.pth'


def test_atomic_writes_keep_the_umask_mode(tmp_path):
    """As a plain write: 0666 less the umask (not mkstemp's 0600)."""
    old = os.umask(0o022)
    try:
        save_checkpoint({'w': 1}, str(tmp_path / 'a.pth'))
        os.umask(0o077)
        get_file_backend(str(tmp_path)).put_text('a.pth',
                                                 tmp_path / 'last_checkpoint')
    finally:
        os.umask(old)
    assert oct((tmp_path / 'a.pth').stat().st_mode & 0o777) == '0o644'
    assert oct((tmp_path / 'last_checkpoint').stat().st_mode
               & 0o777) == '0o600'
