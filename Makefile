# The two commands a newcomer runs. Each installs what it needs into .venv
# (tools/install_env.sh; quick when everything is already there).
SHELL  := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.mmconvmlp-installed

.PHONY: test test-fast test-onedl demo install clean

install: $(STAMP)

# Re-run the installer only when a requirement, setup.py or the C++ op changes.
$(STAMP): tools/install_env.sh setup.py $(wildcard requirements/*.txt) \
		mmconvmlp/ops/csrc/winograd.cpp
	bash tools/install_env.sh $(VENV)
	touch $@

## Run the whole test suite, slow end-to-end tests included.
test: $(STAMP)
	$(PYTHON) -m pytest tests

## The unit tests only (skips tests marked slow).
test-fast: $(STAMP)
	$(PYTHON) -m pytest tests -m "not slow"

ONEDL_VENV  := .venv-onedl
ONEDL_STAMP := $(ONEDL_VENV)/.mmconvmlp-installed

$(ONEDL_STAMP): tools/install_env.sh setup.py $(wildcard requirements/*.txt) \
		mmconvmlp/ops/csrc/winograd.cpp
	STACK=onedl bash tools/install_env.sh $(ONEDL_VENV)
	touch $@

## The tests marked `onedl` on the OneDL stack (onedl-mmengine, onedl-mmcv,
## onedl-mmdetection, onedl-mmsegmentation) in a venv of its own. Not in CI
## (the fresh onedl-mmcv build would take CI past its time): run it before
## landing a change to packaging, registry, configs or checkpoint I/O.
test-onedl: $(ONEDL_STAMP)
	$(ONEDL_VENV)/bin/python -m pytest tests -m onedl

DEMO_CONFIG := configs/detection/retinanet_convmlp_s_builtin.py
DEMO_DIR    := work_dirs/demo

## Build the built-in dataset, train RetinaNet-ConvMLP-S on it, evaluate, draw.
demo: $(STAMP)
	@echo "make demo: builds the built-in dataset (200 training, 50 validation images),"
	@echo "  trains RetinaNet-ConvMLP-S from scratch on the CPU for 5 epochs (500 iterations"
	@echo "  of 2 images at 160x160), evaluates it (COCO bbox mAP) and draws its predictions."
	@echo "  About 6-7 minutes on 2 cores (6 min 17 s measured on an AVX2 machine), more on slower ones."
	$(PYTHON) tools/dataset_converters/make_builtin.py data/builtin
	$(PYTHON) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR) \
		--cfg-options randomness.seed=0
	$(PYTHON) tools/test.py $(DEMO_CONFIG) $$(cat $(DEMO_DIR)/last_checkpoint) \
		--work-dir $(DEMO_DIR) --show-dir $(CURDIR)/$(DEMO_DIR)/vis \
		2>&1 | tee $(DEMO_DIR)/test.log
	@grep -o "coco/bbox_mAP: [0-9.]*" $(DEMO_DIR)/test.log | sed 's/^/demo result: /'
	@echo "predictions drawn on the validation images: $(DEMO_DIR)/vis/"

clean:
	rm -rf $(VENV) $(ONEDL_VENV) work_dirs data/builtin build dist mmconvmlp/.mim \
		mmconvmlp/ops/_winograd*.so
