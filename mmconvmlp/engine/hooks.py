"""Hooks that make an interrupted run continue exactly."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from ..registry import HOOKS
from .checkpoint_io import install_checkpoint_io


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Keep the random generators' states in every checkpoint.

    mmengine re-seeds a resumed run from its seed, so stochastic depth,
    random flips and the like draw other numbers than the run that was
    interrupted. Saving the torch, numpy and Python generator states with
    each checkpoint and restoring them on resume makes a run that was killed
    and resumed end with the same weights as one that never stopped (with
    deterministic settings and a dataloader without persistent workers).
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        """Store the generator states under ``checkpoint['random_states']``."""
        states = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(),
                      python=random.getstate())
        if torch.cuda.is_available():
            states['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['random_states'] = states

    def after_load_checkpoint(self, runner, checkpoint):
        """Keep the states of a resumed checkpoint for :meth:`before_train`
        (mmengine may still re-seed between loading and training)."""
        if runner._resume:
            self._resumed_states = checkpoint.get('random_states')

    def before_train(self, runner):
        """Restore the generator states of the checkpoint resumed from."""
        states = getattr(self, '_resumed_states', None)
        if not states:
            return
        torch.set_rng_state(states['torch'])
        np.random.set_state(states['numpy'])
        random.setstate(states['python'])
        if 'cuda' in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states['cuda'])


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
    have. mmconvmlp's ``tools/train.py`` and ``tools/test.py`` add it.
    """

    def __init__(self):
        install_checkpoint_io()
