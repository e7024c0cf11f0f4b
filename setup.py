"""Install mmconvmlp: ConvMLP backbones for MMDetection 3.x and MMSegmentation 1.x."""
import os.path as osp
import platform

from setuptools import find_packages, setup


def read_requirements(name):
    """Return the requirement lines of ``requirements/<name>.txt``."""
    path = osp.join(osp.dirname(__file__), 'requirements', f'{name}.txt')
    with open(path) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


def read_version():
    """Read ``__version__`` from ``mmconvmlp/version.py`` without importing."""
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmconvmlp', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def winograd_extension():
    """The optional Winograd convolution op (``mmconvmlp.ops._winograd``).

    Built against the installed torch (install with ``--no-build-isolation``),
    on x86-64 only: it calls the MKL sgemm that PyTorch's x86 builds export.
    Without it the backbone and ``optimize_for_inference`` run PyTorch's
    convolutions.
    """
    if platform.machine().lower() not in ('x86_64', 'amd64'):
        return {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        return {}
    extension = CppExtension(
        'mmconvmlp.ops._winograd', ['mmconvmlp/ops/csrc/winograd.cpp'],
        extra_compile_args=['-O3', '-mavx2', '-mfma', '-fopenmp'])
    return dict(ext_modules=[extension],
                cmdclass={'build_ext': BuildExtension})


setup(
    name='mmconvmlp',
    version=read_version(),
    description='ConvMLP backbones for MMDetection 3.x and MMSegmentation 1.x',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.8',
    # mmcv is deliberately absent: it must be built against the installed
    # torch (see README). Importing mmconvmlp checks for its compiled ops.
    install_requires=read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests')},
    license='Apache-2.0',
    **winograd_extension(),
)
