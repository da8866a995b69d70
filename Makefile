# Two commands set everything up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: demo demo-train test lint bench clean install readme-diagrams readme-gifs

install: $(STAMP)

# Reinstall whenever pyproject.toml changes; the stamp keeps `make test` fast otherwise.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,dask,mp4]'
	touch $(STAMP)

demo: $(STAMP)
	@rm -rf out && mkdir -p out
	$(BIN)/convkit info sample_images
	$(BIN)/convkit grayscale sample_images --resize 512x512 --out-dir out/gray -j $(JOBS)
	$(BIN)/convkit filter sample_images --gray -k sobel-x -k sobel-y -k laplacian -k sharpen --out-dir out/filter -j $(JOBS)
	$(BIN)/convkit shape-calc --input 512 --kernel 15 --stride 1 --padding 0
	$(BIN)/convkit conv sample_images -k edges4 --activation relu --out-dir out/conv -j $(JOBS)
	$(BIN)/convkit run sample_images --spec "conv2d(1, 15) relu maxpool2d(2)" --seed 0 --out-dir out/run -j $(JOBS)
	$(BIN)/convkit pool sample_images --color --size 4 --out-dir out/pool -j $(JOBS)
	$(BIN)/convkit shape-calc --spec "conv2d(6, 5) relu maxpool2d(2) conv2d(16, 5) relu maxpool2d(2) flatten dense(120) dense(10)" --input 32x32x1 --diagram out/lenet.svg
	$(BIN)/convkit animate --input 7 --kernel-size 3 --stride 2 --padding same --numbers -o out/animate.gif
	@echo
	@echo "Results are in $(CURDIR)/out/ (gray/, filter/, conv/, run/, pool/, lenet.svg, animate.gif)"

# Training needs CIFAR-10, which cannot always be downloaded: this trains on a generated
# look-alike in the exact on-disk format (see README), then runs predict with the result;
# then `convkit train` on a generated folder of labelled images (three shapes), the learned
# kernels and Grad-CAM heat maps of the model it trained.
demo-train: $(STAMP)
	$(BIN)/python tests/cifar_fixtures.py out/fake-cifar --per-batch 500 --test 1000
	$(BIN)/convkit train-cifar --data-dir out/fake-cifar --epochs 3 --seed 1 --out out/train-demo --overwrite
	$(BIN)/convkit predict out/train-demo sample_images --top-k 3
	$(BIN)/python tests/folder_fixtures.py out/shapes --per-class 60
	$(BIN)/convkit train out/shapes --epochs 6 --seed 1 --out out/shapes-run --overwrite
	$(BIN)/convkit kernels out/shapes-run --out-dir out/shapes-kernels
	$(BIN)/convkit explain out/shapes-run out/shapes/disk/disk_0000.png out/shapes/cross/cross_0001.jpg out/shapes/square/square_0002.webp --out-dir out/shapes-why

# -n auto: one pytest worker per core (pytest-xdist); `make test PYTEST_ARGS=-n0` runs in one.
PYTEST_ARGS ?= -n auto
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check convkit tests benchmarks
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_shape_calc.py
	$(BIN)/python benchmarks/bench_opencv.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_keras.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_train_folder.py
	$(BIN)/python benchmarks/bench_animate.py

# The README's pictures, drawn by convkit itself so that they never go stale.
readme-diagrams: $(STAMP)
	$(BIN)/convkit shape-calc --spec docs/vgg16.txt --diagram docs/diagram-vgg16.svg > /dev/null

# The README's animations (small GIFs, committed), drawn by convkit animate.
readme-gifs: $(STAMP)
	$(BIN)/convkit animate -i 5 --kernel-size 3 -p 1 --numbers -o docs/animate-conv.gif
	$(BIN)/convkit animate -i 3 --kernel-size 3 -s 2 -p same --transpose --numbers -o docs/animate-transpose.gif

clean:
	rm -rf out .pytest_cache build *.egg-info
