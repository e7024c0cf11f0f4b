"""Image files a user hands us: read if they are images, else one line
that names the file."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mmconvmlp.images import ImageError, check_image_file, load_image


def _png_header_claiming(width, height):
    """A PNG whose header claims ``width`` x ``height`` pixels, with one
    tiny compressed row: a decompression bomb's calling card."""
    def chunk(kind, data):
        body = kind + data
        return (struct.pack('>I', len(data)) + body
                + struct.pack('>I', zlib.crc32(body) & 0xffffffff))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
            + chunk(b'IDAT', zlib.compress(b'\0' * 64)) + chunk(b'IEND', b''))


def _jpeg_bytes(tmp_path, mode='RGB'):
    path = tmp_path / f'src_{mode}.jpg'
    Image.new(mode, (64, 48), (10, 20, 30, 40)[:len(mode)]).save(path)
    return path.read_bytes()


BAD = {
    'empty': (lambda tmp: b'', 'the file is empty'),
    'text': (lambda tmp: b'hello, not an image', 'not an image'),
    'truncated JPEG': (lambda tmp: _jpeg_bytes(tmp)[:300],
                       'truncated or corrupt'),
    'header claims 100000x100000': (
        lambda tmp: _png_header_claiming(100000, 100000),
        'its header claims too many pixels'),
}


@pytest.mark.parametrize('name', list(BAD))
def test_bad_images_get_one_line_naming_the_file(tmp_path, name):
    make, message = BAD[name]
    path = tmp_path / 'image.jpg'
    path.write_bytes(make(tmp_path))
    with pytest.raises(ImageError) as info:
        load_image(str(path))
    text = str(info.value)
    assert message in text and str(path) in text and '\n' not in text


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        load_image(str(tmp_path / 'missing.png'))
    with pytest.raises(ImageError, match='is a directory'):
        load_image(str(tmp_path))


def test_odd_but_valid_images_are_read_as_8_bit_rgb(tmp_path):
    """16-bit PNG, CMYK JPEG, grey, RGBA and a single pixel: all read as
    (H, W, 3) uint8 RGB."""
    deep = tmp_path / 'deep.png'
    Image.fromarray(np.full((6, 5), 65535, np.uint16)).save(deep)
    cmyk = tmp_path / 'cmyk.jpg'
    cmyk.write_bytes(_jpeg_bytes(tmp_path, 'CMYK'))
    grey = tmp_path / 'grey.png'
    Image.new('L', (7, 3), 200).save(grey)
    rgba = tmp_path / 'rgba.png'
    Image.new('RGBA', (4, 4), (1, 2, 3, 4)).save(rgba)
    one = tmp_path / 'one.png'
    Image.new('RGB', (1, 1), (255, 0, 0)).save(one)
    shapes = {}
    for path in (deep, cmyk, grey, rgba, one):
        image = load_image(str(path))
        assert image.dtype == np.uint8 and image.ndim == 3
        shapes[path.name] = image.shape
    assert shapes['deep.png'] == (6, 5, 3)
    assert int(load_image(str(deep)).min()) == 255  # scaled, not clipped to 0
    assert shapes['one.png'] == (1, 1, 3)
    assert load_image(str(one))[0, 0].tolist() == [255, 0, 0]
    assert check_image_file(str(grey)) == (7, 3)
    assert load_image(str(one), short_side=4).shape == (4, 4, 3)
