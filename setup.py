"""Install mmconvmlp: ConvMLP backbones for MMDetection 3.x and MMSegmentation 1.x.

    pip install --no-build-isolation .          # or -e . while developing

The wheel carries, besides the package, what ``mim`` and users look for
under ``mmconvmlp/.mim/``: ``configs/`` (with the metafiles), ``tools/`` and
``model-index.yml``. The optional Winograd op (``mmconvmlp.ops._winograd``) is
compiled when torch is importable here (hence ``--no-build-isolation``) and a
C++ compiler works; otherwise the install goes on without it and says why.
``MMCONVMLP_WITH_OPS=0`` skips it.
"""
import os
import os.path as osp
import platform
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
#: What the wheel carries under mmconvmlp/.mim/, as OpenMMLab packages do.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_requirements(name):
    """Return the requirement lines of ``requirements/<name>.txt``."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


def read_version():
    """Read ``__version__`` from ``mmconvmlp/version.py`` without importing."""
    scope = {}
    with open(osp.join(HERE, 'mmconvmlp', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def report(message):
    """Print a line of the install's report where pip shows it (stderr)."""
    print(f'[mmconvmlp setup] {message}', file=sys.stderr, flush=True)


class BuildPyWithMim(build_py):
    """``build_py`` that adds configs, tools and model-index.yml under
    ``mmconvmlp/.mim/``: copied into the wheel, or, for an editable install,
    linked into the source tree."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            target, link = osp.join(HERE, 'mmconvmlp', '.mim'), True
        else:
            target, link = osp.join(self.build_lib, 'mmconvmlp', '.mim'), False
        os.makedirs(target, exist_ok=True)
        for name in MIM_FILES:
            src, dst = osp.join(HERE, name), osp.join(target, name)
            if osp.islink(dst) or osp.isfile(dst):
                os.remove(dst)
            elif osp.isdir(dst):
                shutil.rmtree(dst)
            if link:
                os.symlink(osp.relpath(src, target), dst)
            elif osp.isdir(src):
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                    '__pycache__', '*.pyc'))
            else:
                shutil.copyfile(src, dst)


class OptionalBuildExt(build_ext):
    """Build the optional op; if it fails, install without it and say so."""

    def run(self):
        try:
            super().run()
        except Exception as err:  # compiler missing or failing
            report(f'the optional Winograd op was NOT built ({err}); '
                   'mmconvmlp works without it (direct convolutions)')

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as err:
            report(f'the optional Winograd op was NOT built ({err}); '
                   'mmconvmlp works without it (direct convolutions)')
        else:
            report(f'built the optional Winograd op ({ext.name})')


def winograd_extension():
    """The optional Winograd convolution op (``mmconvmlp.ops._winograd``).

    Built against the installed torch, on x86-64 only (it calls the MKL
    sgemm that PyTorch's x86 builds export, with AVX2/FMA code; at run time
    it is used only on CPUs that have those instructions).
    """
    if os.environ.get('MMCONVMLP_WITH_OPS', '1') == '0':
        report('MMCONVMLP_WITH_OPS=0: the optional Winograd op is not built')
        return {}
    if platform.machine().lower() not in ('x86_64', 'amd64'):
        report(f'the optional Winograd op is x86-64 only; not built on '
               f'{platform.machine()}')
        return {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        report('the optional Winograd op was NOT built: torch is not '
               'importable during the build (pip build isolation?). '
               'Install torch first, then `pip install --no-build-isolation '
               '.` to build it')
        return {}

    class BuildTorchExt(OptionalBuildExt, BuildExtension):
        pass

    extension = CppExtension(
        'mmconvmlp.ops._winograd', ['mmconvmlp/ops/csrc/winograd.cpp'],
        extra_compile_args=['-O3', '-mavx2', '-mfma', '-fopenmp'])
    return dict(ext_modules=[extension], cmdclass={'build_ext': BuildTorchExt})


extension = winograd_extension()
extras = {name: read_requirements(name)
          for name in ('det', 'seg', 'onedl', 'deploy', 'tests')}
# upstream OpenMMLab; on the OneDL fork: [onedl,deploy]
extras['all'] = sorted(set(extras['det'] + extras['seg'] + extras['deploy']))

setup(
    name='mmconvmlp',
    version=read_version(),
    description='ConvMLP backbones for MMDetection 3.x and MMSegmentation 1.x',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    url='https://github.com/SHI-Labs/Convolutional-MLPs',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    package_data={'mmconvmlp': ['ops/csrc/*.cpp']},
    python_requires='>=3.9',
    # mmcv is deliberately absent: it must be built against the installed
    # torch (see README).
    install_requires=read_requirements('runtime'),
    extras_require=extras,
    license='Apache-2.0',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    ext_modules=extension.get('ext_modules', []),
    cmdclass=dict(build_py=BuildPyWithMim,
                  **extension.get('cmdclass', {})),
    zip_safe=False,
)
