"""Reading the image files a user hands us (demo, feature maps, int8
calibration, benchmarks): checked before they are decoded.

A file is read only if it is a complete image of a sane size: missing
files, directories, empty or truncated files, files that are not images
and headers that claim more than :data:`MAX_PIXELS` pixels (a decompression
bomb) each get one line that names the file. Grey, RGBA, CMYK and 16-bit
files are read as 8-bit RGB (as mmcv reads them for the models).
"""
import os.path as osp

#: Largest image accepted, in pixels (16384 x 16384); Pillow's own limit
#: (``Image.MAX_IMAGE_PIXELS``) refuses larger headers first, unless a user
#: switched it off.
MAX_PIXELS = 1 << 28


class ImageError(ValueError):
    """An image file that cannot be used; the message names it."""


def check_image_file(path):
    """Check that ``path`` is a complete image file of at most
    :data:`MAX_PIXELS` pixels; return its (width, height).

    Raises:
        FileNotFoundError: no such file.
        ImageError: a directory, empty, not an image, truncated or corrupt,
            or too large.
    """
    from PIL import Image
    if osp.isdir(path):
        raise ImageError(f'cannot read image {path}: it is a directory')
    if not osp.isfile(path):
        raise FileNotFoundError(f'image file not found: {path}')
    if osp.getsize(path) == 0:
        raise ImageError(f'cannot read image {path}: the file is empty')
    try:
        with Image.open(path) as image:
            size = image.size
            if size[0] * size[1] > MAX_PIXELS:
                raise ImageError(
                    f'cannot read image {path}: its header claims '
                    f'{size[0]}x{size[1]} pixels, more than {MAX_PIXELS}')
            image.load()  # decodes: finds truncated and corrupt files
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(f'cannot read image {path}: its header claims too '
                         f'many pixels ({err})') from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f'cannot read image {path}: not an image, or '
                         f'truncated or corrupt ({err})') from None
    return size


def load_image(path, short_side=None):
    """The image at ``path`` as an RGB uint8 array (checked by
    :func:`check_image_file`), its shorter side resized to ``short_side``
    if given."""
    import mmcv
    check_image_file(path)
    image = mmcv.imread(path, channel_order='rgb')
    if image is None or image.size == 0:
        raise ImageError(f'cannot read image {path}: OpenCV cannot decode it')
    if short_side:
        height, width = image.shape[:2]
        scale = short_side / min(height, width)
        image = mmcv.imresize(image, (max(round(width * scale), 1),
                                      max(round(height * scale), 1)))
    return image
