"""Importing mmconvmlp registers its modules and changes nothing else."""
import subprocess
import sys
import textwrap

SNAPSHOT = textwrap.dedent('''
    import os, tempfile, warnings
    import mmengine.registry as reg
    import torch
    from mmengine.fileio import backends as fb
    from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint
    import mmcv.cnn, mmdet.models, mmseg.models  # their own registrations

    def registries():
        todo = [r for r in vars(reg).values() if isinstance(r, reg.Registry)]
        seen = {}
        while todo:
            r = todo.pop()
            seen.setdefault(id(r), r)
            todo += [c for c in r._children.values() if id(c) not in seen]
        return seen.values()

    def snapshot():
        state = {('checkpoint loader', k): v
                 for k, v in CheckpointLoader._schemes.items()}
        state.update({('file backend', k): v for k, v in fb.backends.items()})
        state.update({('backend prefix', k): v
                      for k, v in fb.prefix_to_backends.items()})
        for r in registries():
            state.update({(f'registry {r.scope}.{r.name}', k): v
                          for k, v in r._module_dict.items()})
        state[('torch', 'threads')] = torch.get_num_threads()
        state[('torch', 'default dtype')] = torch.get_default_dtype()
        state[('torch', 'deterministic')] = (
            torch.are_deterministic_algorithms_enabled())
        state[('warnings', 'filters')] = tuple(warnings.filters)
        return state

    os.umask(0o022)
    before = snapshot()
    import mmconvmlp
    after = snapshot()
    for key in sorted(set(before) | set(after), key=str):
        if before.get(key, 'absent') is not after.get(key, 'absent') and (
                before.get(key, 'absent') != after.get(key, 'absent')):
            print('CHANGED', key[0], '|', key[1])
    path = os.path.join(tempfile.mkdtemp(), 'epoch_1.pth')
    save_checkpoint({'state_dict': {}}, path)
    print('MODE', oct(os.stat(path).st_mode & 0o777))
''')


def test_import_registers_convmlp_and_changes_nothing_else():
    out = subprocess.run([sys.executable, '-c', SNAPSHOT], check=True,
                         capture_output=True, text=True).stdout
    changed = sorted(line for line in out.splitlines()
                     if line.startswith('CHANGED'))
    assert changed == [
        'CHANGED registry mmconvmlp.model | ConvMLP',
        'CHANGED registry mmdet.model | ConvMLP',
        'CHANGED registry mmseg.model | ConvMLP',
    ], out
    assert 'MODE 0o644' in out
