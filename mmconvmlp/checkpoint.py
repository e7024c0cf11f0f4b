"""The one place where mmconvmlp reads checkpoint files.

Every file is read with PyTorch's weights-only unpickler: a checkpoint that
would execute code when loaded is refused. What mmengine's own checkpoints
need beyond tensors and containers (its ``HistoryBuffer`` and numpy arrays and
scalars) is allow-listed by name in :data:`SAFE_GLOBALS`.

It understands the three layouts a ConvMLP backbone's weights come in:

* the official ImageNet classification checkpoints: a plain state dict whose
  classifier keys (``head.*``, ``norm.*``) are dropped;
* the official RetinaNet / Mask R-CNN / Semantic FPN checkpoints (mmcv 1.x):
  ``{'state_dict': {'backbone.…': …}, 'meta': …}``;
* checkpoints saved by mmengine: ``{'state_dict': …, 'meta': …,
  'message_hub': …, 'optimizer': …}``.

What mmconvmlp writes is plain data (:func:`plain_data`): tensors, numbers,
strings and containers, which stock ``torch.load`` (weights-only) opens.
"""
import io
import itertools
import os
import os.path as osp
import pickle
import urllib.error
import zipfile
from collections import OrderedDict

import numpy as np
import torch

OFFICIAL_ROOT = 'https://shi-labs.com/projects/convmlp/checkpoints/'


def _official_checkpoints():
    """Map each official short name to its download address."""
    names = {}
    for arch in 'sml':
        for name, path in [
            (f'convmlp_{arch}_imagenet', f'convmlp_{arch}_imagenet.pth'),
            (f'retinanet_convmlp_{arch}_coco',
             f'detection/retinanet_convmlp_{arch}_coco.pth'),
            (f'maskrcnn_convmlp_{arch}_coco',
             f'detection/maskrcnn_convmlp_{arch}_coco.pth'),
            (f'sem_fpn_convmlp_{arch}_ade20k',
             f'segmentation/sem_fpn_convmlp_{arch}_ade20k.pth'),
        ]:
            names[name] = OFFICIAL_ROOT + path
    return names


#: Short names of the official checkpoints -> download addresses.
OFFICIAL_CHECKPOINTS = _official_checkpoints()

#: Keys of the official classification checkpoints that are not backbone.
CLASSIFIER_PREFIXES = ('head.', 'norm.')


def _history_buffer_attribute(owner, name):
    """Stand-in for ``getattr`` while unpickling: mmengine's HistoryBuffer
    pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``;
    nothing else may be looked up."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'min', 'max', 'mean', 'current'}
    allowed.update(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'refused getattr({owner!r}, {name!r}) while unpickling')


def _safe_globals():
    """The non-tensor types mmengine's checkpoints hold, by their own names."""
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = getattr(np, '_core', getattr(np, 'core', None)).multiarray
    dtype_types = [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    return [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
            multiarray.scalar, *dtype_types,
            (_history_buffer_attribute, 'builtins.getattr')]


#: Globals a weights-only load may use: mmengine's ``HistoryBuffer`` (and its
#: statistics methods, through a restricted getattr) and numpy's array and
#: scalar reconstruction; nothing that runs arbitrary code.
SAFE_GLOBALS = _safe_globals()


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message names the file."""


def resolve(checkpoint):
    """Return a local path for ``checkpoint``.

    Args:
        checkpoint (str): a local path, an ``http(s)://`` address or an
            official short name such as ``'convmlp_s_imagenet'`` (see
            :data:`OFFICIAL_CHECKPOINTS`). Remote files are downloaded once
            into torch's hub cache.
    """
    checkpoint = str(checkpoint)
    url = OFFICIAL_CHECKPOINTS.get(checkpoint)
    if url is None and checkpoint.startswith(('http://', 'https://')):
        url = checkpoint
    if url is None:
        path = osp.expanduser(checkpoint)
        if osp.isdir(path):
            raise CheckpointError(f'checkpoint {checkpoint} is a directory, '
                                  'not a file')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'checkpoint file not found: {checkpoint!r}. Pass a local '
                'file, an http(s) address or one of the official short names: '
                f'{", ".join(sorted(OFFICIAL_CHECKPOINTS))}')
        return path
    return _download(url)


def _download(url):
    """Download ``url`` into torch's hub cache unless it is there already."""
    cache_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(cache_dir, osp.basename(url))
    if osp.isfile(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, path, progress=False)
    except (urllib.error.URLError, OSError) as err:
        raise CheckpointError(
            f'could not download {url} ({err}). This machine may be offline: '
            f'download the file on another machine, copy it to {path} (or '
            "anywhere) and pass its local path, e.g. init_cfg=dict(type="
            "'Pretrained', checkpoint='/path/to/file.pth')") from err
    return path


def load_file(path, map_location='cpu'):
    """Read a checkpoint file with the weights-only unpickler.

    Raises:
        CheckpointError: the file is truncated, corrupt, not a PyTorch
            checkpoint, or would need code outside :data:`SAFE_GLOBALS`.
    """
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        if 'global' in str(err).lower() or 'refused getattr' in str(err):
            raise CheckpointError(
                f'refused to load {path}: unpickling it would execute code '
                'that is not on the allow-list of mmconvmlp.checkpoint '
                f'(weights-only loading). Details: {err}') from None
        raise CheckpointError(
            f'cannot read checkpoint {path}: the file is corrupt or not a '
            f'PyTorch checkpoint ({err})') from None
    except IsADirectoryError:
        raise CheckpointError(f'checkpoint {path} is a directory, not a '
                              'file') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(
            f'cannot read checkpoint {path}: the file is truncated, corrupt '
            f'or not a PyTorch checkpoint ({type(err).__name__}: {err})'
        ) from None


def extract_backbone(checkpoint, prefix=None, source='checkpoint'):
    """Return the backbone's state dict from any of the supported layouts.

    Args:
        checkpoint (dict): what :func:`load_file` returned.
        prefix (str | None): take only keys under this prefix (for example
            ``'backbone.'``) and strip it. ``None`` detects the layout: keys
            under ``backbone.`` if there are any, else the whole state dict
            without the classifier's ``head.*`` / ``norm.*`` keys.
        source (str): what to call the checkpoint in error messages.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'{source} holds a {type(checkpoint).__name__}, expected a dict '
            'of tensors or a dict with a "state_dict" entry')
    state_dict = checkpoint.get('state_dict', checkpoint.get('model',
                                                             checkpoint))
    if not isinstance(state_dict, dict):
        raise CheckpointError(
            f'{source}: its "state_dict" is a {type(state_dict).__name__}, '
            'expected a dict of tensors')
    not_weights = [f'{k!s:.80} ({type(v).__name__})'
                   for k, v in state_dict.items()
                   if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if not_weights:
        raise CheckpointError(
            f'{source} is not a state dict of tensors: {len(not_weights)} '
            f'entries are not named tensors, e.g. {not_weights[0]}')
    state_dict = {(k[len('module.'):] if k.startswith('module.') else k): v
                  for k, v in state_dict.items()}
    if prefix is None and any(k.startswith('backbone.') for k in state_dict):
        prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        picked = {k[len(prefix):]: v for k, v in state_dict.items()
                  if k.startswith(prefix)}
        if not picked:
            raise CheckpointError(
                f'{source} has no keys under prefix {prefix!r}')
        return picked
    return {k: v for k, v in state_dict.items()
            if not k.startswith(CLASSIFIER_PREFIXES)}


def load_backbone_weights(module, checkpoint, prefix=None, logger=None):
    """Load a backbone's weights into ``module``, refusing partial loads.

    Args:
        module (nn.Module): the backbone.
        checkpoint (str): path, address or official short name.
        prefix (str | None): see :func:`extract_backbone`.
        logger (logging.Logger | None): receives a line on what was loaded
            and a warning for keys of the checkpoint that were not used.

    Raises:
        CheckpointError: weights of ``module`` are missing from the file,
            or have another shape there.
    """
    path = resolve(checkpoint)
    state_dict = extract_backbone(load_file(path), prefix, source=path)
    own = module.state_dict()
    wrong = [f'{k}: file {tuple(state_dict[k].shape)}, model '
             f'{tuple(v.shape)}' for k, v in own.items()
             if k in state_dict and state_dict[k].shape != v.shape]
    if wrong:
        raise CheckpointError(
            f'{path} does not fit this backbone (another arch?); shapes '
            f'differ for {len(wrong)} weights: {"; ".join(wrong[:10])}')
    missing = [k for k in own if k not in state_dict]
    if missing:
        raise CheckpointError(
            f'{path} lacks {len(missing)} of the {len(own)} backbone weights '
            f'(the model would stay randomly initialised): '
            f'{", ".join(missing[:20])}{" …" if len(missing) > 20 else ""}')
    unexpected = sorted(set(state_dict) - set(own))
    module.load_state_dict(state_dict, strict=False)
    if logger is not None:
        logger.info(f'loaded {len(own)} backbone weights from {path}')
        if unexpected:
            logger.warning(f'{len(unexpected)} keys of {path} were not used: '
                           f'{", ".join(unexpected[:20])}')


def atomic_write(data, path):
    """Write ``data`` (bytes) to ``path`` through a temporary file, an fsync
    and a rename, so that no reader, and no crash midway, ever finds a
    half-written file under that name. The file gets the mode a plain
    ``open(path, 'wb')`` would give it (0666 less the umask)."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    for attempt in itertools.count():
        tmp = osp.join(directory,
                       f'.tmp-{osp.basename(path)}-{os.getpid()}-{attempt}')
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


#: Types a weights-only ``torch.load`` opens without any allow-list.
PLAIN_SCALARS = (str, bytes, int, float, complex, bool, type(None),
                 torch.Tensor, torch.Size, torch.dtype, torch.device)


def plain_data(obj, where='checkpoint', strange=None):
    """``obj`` with numpy arrays as tensors and numpy scalars as Python
    numbers: what stock weights-only ``torch.load`` opens.

    dicts, OrderedDicts, lists and tuples keep their type, so comparisons
    of the data (mmengine compares ``dataset_meta`` on resume) still hold;
    their subclasses (``ConfigDict``, named tuples) become the plain type.
    A value of any other type is kept as it is and its place
    (``meta.foo.bar: Type``) appended to ``strange``, if given.
    """
    if isinstance(obj, np.generic):  # before float: np.float64 is one
        return obj.item()
    if isinstance(obj, PLAIN_SCALARS):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in 'biufc':
            return torch.from_numpy(np.ascontiguousarray(obj))
        return plain_data(obj.tolist(), where, strange)
    if isinstance(obj, dict):
        kind = OrderedDict if isinstance(obj, OrderedDict) else dict
        out = kind((k, plain_data(v, f'{where}.{k}', strange))
                   for k, v in obj.items())
        if kind is OrderedDict and hasattr(obj, '_metadata'):  # versions
            out._metadata = plain_data(obj._metadata, where, strange)
        return out
    if isinstance(obj, (list, tuple)):
        kind = list if isinstance(obj, list) else tuple
        return kind(plain_data(v, f'{where}.{i}', strange)
                    for i, v in enumerate(obj))
    if strange is not None:
        strange.append(f'{where}: {type(obj).__name__}')
    return obj


def serialized(obj):
    """The bytes ``torch.save`` writes for ``obj``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_file(obj, path):
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(serialized(obj), path)


def convert_official_downstream(checkpoint, source='checkpoint'):
    """Turn an official mmdet 2.x / mmseg 0.x ConvMLP checkpoint into the
    layout mmdet 3.x / mmseg 1.x load directly.

    The weights keep their names (the official model and ours share them);
    what changes is the meta: mmcv 1.x's ``CLASSES`` / ``PALETTE`` become
    mmengine's ``dataset_meta``. Optimizer state is dropped.

    Raises:
        CheckpointError: the file is not a downstream checkpoint (no
            ``state_dict`` with ``backbone.`` keys).
    """
    if not isinstance(checkpoint, dict) or not isinstance(
            checkpoint.get('state_dict'), dict):
        raise CheckpointError(f'{source} is not a detection/segmentation '
                              'checkpoint: it has no "state_dict" dict')
    if not any(k.startswith('backbone.') for k in checkpoint['state_dict']):
        raise CheckpointError(f'{source} has no backbone.* weights')
    old_meta = dict(checkpoint.get('meta') or {})
    dataset_meta = dict(old_meta.pop('dataset_meta', {}))
    for old, new in (('CLASSES', 'classes'), ('PALETTE', 'palette')):
        if old in old_meta:
            dataset_meta[new] = list(old_meta.pop(old))
    old_meta.pop('config', None)  # Python text: mmengine would execute it
    meta = dict(old_meta, dataset_meta=dataset_meta,
                converted_by='mmconvmlp')
    return plain_data(dict(state_dict=dict(checkpoint['state_dict']),
                           meta=meta))


#: What :func:`publish` keeps of a training checkpoint.
PUBLISHED_KEYS = ('meta', 'state_dict')


def publish(in_file, out_file):
    """Write the weights and meta of ``in_file`` (read weights-only) as
    plain data to ``out_file`` with the first 8 hex digits of its sha256
    before the suffix, as mmdet's ``publish_model.py`` does: optimizer,
    parameter schedulers, message hub and random states are dropped, and so
    is ``meta['config']`` (code; mmcv 1.x checkpoints carry one).

    Returns:
        tuple[str, list[str]]: the published file's path, the keys dropped.
    """
    import hashlib
    checkpoint = load_file(resolve(in_file))
    if not isinstance(checkpoint, dict) or not isinstance(
            checkpoint.get('state_dict'), dict):
        raise CheckpointError(f'{in_file} is not a training checkpoint: it '
                              'has no "state_dict" dict')
    dropped = sorted(k for k in checkpoint if k not in PUBLISHED_KEYS)
    meta = dict(checkpoint.get('meta') or {})
    meta.pop('config', None)
    published = plain_data(dict(meta=meta,
                                state_dict=checkpoint['state_dict']))
    data = serialized(published)
    stem = out_file[:-len('.pth')] if out_file.endswith('.pth') else out_file
    final = f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    atomic_write(data, final)
    return final, dropped
