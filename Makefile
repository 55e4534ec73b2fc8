# mami — build, test, reproduce, benchmark.  `make help` lists the targets.
GO      ?= go
BIN     := bin/mami
WORKDIR ?= $(or $(MAMI_WORKDIR),.mami)

# OpenBLAS makes the Gorgonia models several times faster. It is used when the library is installed
# (Debian: apt-get install libopenblas-dev); otherwise the pure-Go BLAS is used and everything still works.
HAVE_OPENBLAS := $(shell printf 'int main(void){return 0;}' | $(or $(CC),cc) -x c - -lopenblas -o /dev/null 2>/dev/null && echo yes)
ifeq ($(HAVE_OPENBLAS),yes)
TAGS := openblas
endif
GOFLAGS_TAGS := $(if $(TAGS),-tags $(TAGS))

.PHONY: help build build-cuda build-cuda-gpu gpu-rehearsal test test-short test-cuda sweep serve report repro bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/mami (with OpenBLAS when installed)
	@[ -n "$(TAGS)" ] || echo "note: libopenblas-dev not found; building with the pure-Go BLAS (slower training)"
	$(GO) build $(GOFLAGS_TAGS) -o $(BIN) ./cmd/mami

build-cuda: ## build bin/mami-cuda with the CUDA backend (needs cuda.h and libcuda: docs/gpu.md)
	$(GO) build -tags mamicuda -o bin/mami-cuda ./cmd/mami

test: ## go vet and the whole test suite with the race detector
	$(GO) vet $(GOFLAGS_TAGS) ./...
	$(GO) test $(GOFLAGS_TAGS) -race -count=1 ./...

test-short: ## the test suite without the race detector
	$(GO) test $(GOFLAGS_TAGS) -count=1 ./...

sweep: build ## the main job: every fusion × learning rate on the embedded dataset, tracked to mami serve
	scripts/sweep.sh

serve: build ## the tracking server and dashboard on the work directory's database
	$(BIN) serve --data $(WORKDIR)/server

report: build ## paper figures, report.md/html and results.tex of the latest sweep (trains the repro pair if missing)
	$(BIN) report --workdir $(WORKDIR) --repro

build-cuda-gpu: ## bin/mami-cuda.gz to carry to a GPU machine for scripts/gpu-check.sh (OpenBLAS linked in)
	scripts/build-gpu-binary.sh

gpu-rehearsal: build-cuda-gpu ## rehearse scripts/gpu-check.sh here: bin/mami-cuda.gz against the fake CUDA driver (kernels on the CPU)
	scripts/fake-libcuda.sh $(WORKDIR)/fake-cuda
	GPU_CHECK_DRY=fake MAMI_FAKE_CUDA_ORDER=shuffle MAMI_FAKE_LIBCUDA=$(WORKDIR)/fake-cuda PYTHON=$${PYTHON:-/usr/bin/python3} scripts/gpu-check.sh $(WORKDIR)/gpu-rehearsal

test-cuda: ## vet and build the CUDA variant and run the backend's CPU-side tests (no GPU needed)
	$(GO) vet -tags mamicuda ./models/cuda/... ./cmd/mami
	$(GO) build -tags mamicuda -o /dev/null ./cmd/mami
	$(GO) test -tags mamicuda -count=1 ./models/cuda/...

repro: build ## train the original study (seed preset) and print where its figure is
	$(BIN) train -c configs/seed.yaml --set workdir=$(WORKDIR)

bench: build ## training throughput of mami vs PyTorch on this machine, side by side
	scripts/bench.sh

clean: ## remove built binaries (the work directory is left alone)
	rm -rf bin
