"""Hooks that make an interrupted run continue exactly."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


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
