"""Hooks that make an interrupted run continue exactly, from checkpoints
that are plain data."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger

from ..checkpoint import plain_data
from ..registry import HOOKS
from .checkpoint_io import (install_checkpoint_io, message_hub_from_plain,
                            message_hub_to_plain)


def random_states():
    """The torch, numpy and Python generators' states as plain data
    (tensors, lists, numbers): what :func:`set_random_states` restores."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states = dict(
        torch=torch.get_rng_state(),
        numpy=dict(bit_generator=name, keys=torch.from_numpy(
            keys.astype(np.int64)), pos=int(pos), has_gauss=int(has_gauss),
            cached_gaussian=float(cached)),
        python=dict(version=version, internal=list(internal),
                    gauss_next=gauss_next))
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states):
    """Restore what :func:`random_states` returned (or the tuples that
    mmconvmlp wrote before its checkpoints were plain data)."""
    torch.set_rng_state(states['torch'])
    numpy_state = states['numpy']
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state['bit_generator'],
                       np.asarray(numpy_state['keys'], dtype=np.uint32),
                       numpy_state['pos'], numpy_state['has_gauss'],
                       numpy_state['cached_gaussian'])
    np.random.set_state(numpy_state)
    python_state = states['python']
    if isinstance(python_state, dict):
        python_state = (python_state['version'],
                        tuple(python_state['internal']),
                        python_state['gauss_next'])
    random.setstate(python_state)
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Keep the random generators' states in every checkpoint.

    mmengine re-seeds a resumed run from its seed, so stochastic depth,
    random flips and the like draw other numbers than the run that was
    interrupted. Saving the torch, numpy and Python generator states with
    each checkpoint (as tensors, lists and numbers) and restoring them on
    resume makes a run that was killed and resumed end with the same
    weights as one that never stopped (with deterministic settings and a
    dataloader without persistent workers).
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        """Store the generator states under ``checkpoint['random_states']``."""
        checkpoint['random_states'] = random_states()

    def after_load_checkpoint(self, runner, checkpoint):
        """Keep the states of a resumed checkpoint for :meth:`before_train`
        (mmengine may still re-seed between loading and training)."""
        if runner._resume:
            self._resumed_states = checkpoint.get('random_states')

    def before_train(self, runner):
        """Restore the generator states of the checkpoint resumed from."""
        states = getattr(self, '_resumed_states', None)
        if states:
            set_random_states(states)


@HOOKS.register_module()
class ExactResumeHook(RandomStateHook):
    """Safe, exact resume for stock mmdet / mmseg tools: one config line.

    ``custom_hooks = [dict(type='mmconvmlp.ExactResumeHook')]``

    When the Runner builds this hook (before it reads or writes any
    checkpoint) it calls :func:`~mmconvmlp.engine.install_checkpoint_io`:
    from then on the process reads local checkpoints with mmconvmlp's safe
    weights-only loader, so ``--resume`` works on torch >= 2.6, and writes
    local files atomically (with the umask's mode). As
    :class:`RandomStateHook` it keeps the random generators' states in every
    checkpoint, so a resumed run draws the numbers the interrupted one would
    have. Every checkpoint it sees written is plain data (the message hub as
    tensors and numbers, restored into mmengine's objects on resume), so
    stock ``torch.load``, mmdet's ``init_detector`` and mmseg's
    ``init_model`` open it. mmconvmlp's ``tools/train.py`` and
    ``tools/test.py`` add it.
    """

    def __init__(self):
        install_checkpoint_io()

    def before_save_checkpoint(self, runner, checkpoint):
        """Write the random states, and the message hub and the rest as
        plain data; warn, naming the key, of anything left that stock
        ``torch.load`` would refuse (a type some other hook put there)."""
        super().before_save_checkpoint(runner, checkpoint)
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = message_hub_to_plain(
                checkpoint['message_hub'])
        strange = []
        for key in list(checkpoint):
            checkpoint[key] = plain_data(checkpoint[key], key, strange)
        if strange:
            MMLogger.get_current_instance().warning(
                'mmconvmlp: this checkpoint holds values that weights-only '
                f'torch.load refuses: {"; ".join(strange[:5])}')

    def after_load_checkpoint(self, runner, checkpoint):
        """Restore the message hub's objects before the Runner loads it."""
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = message_hub_from_plain(
                checkpoint['message_hub'])
        super().after_load_checkpoint(runner, checkpoint)
