# CUDA runtime programs for the end-to-end tests (itests RuntimeIT, and PtxProgramsIT for the ones
# whose kernels must compute from their PTX).
#
# test/cuda/rt_*.cu are ordinary CUDA programs; with nvcc present each is built twice, against the
# shared and the static cudart 13, exactly as applications ship. Without nvcc they are skipped with
# one line, and RuntimeIT skips them too.
#
# test_cudart12, test_cublas12 and test_cublas12_compute need only gcc: they dlopen NVIDIA's 12.6
# libraries at run time.
# test_cudart12 embeds a fatbin of test/cuda/cudart12_kernel.cu, built by nvcc when there is one
# and otherwise the committed copy next to the source. Regenerate that copy after editing the
# kernel (CUDA 13.0 nvcc gives it byte for byte):
#   nvcc -fatbin -gencode 'arch=compute_90,code=[sm_90,compute_90]' \
#        -o test/cuda/cudart12_kernel.fatbin test/cuda/cudart12_kernel.cu

NVCC ?= $(or $(wildcard /usr/local/cuda/bin/nvcc),nvcc)
CUDA_TESTS_NVCC := $(shell command -v $(NVCC) 2>/dev/null)

CUDA_TESTS_DIR := $(BUILD)/test/cuda
CUDA_TESTS_NAMES := $(patsubst test/cuda/%.cu,%,$(wildcard test/cuda/rt_*.cu))
CUDA_TESTS_HEADERS := test/check.h test/cuda/rt_check.h test/cuda/rt_props.h test/cuda/rt_verify.h
# sm_90 code for the mock's H100 plus compute_90 PTX, as the reference observations used.
CUDA_TESTS_GENCODE := -gencode 'arch=compute_90,code=[sm_90,compute_90]'
CUDA_TESTS_NVCCFLAGS := $(CUDA_TESTS_GENCODE) -O2 -g -Xcompiler -Wall,-Werror

ifneq ($(CUDA_TESTS_NVCC),)

CUDA_TESTS_BINS := $(foreach n,$(CUDA_TESTS_NAMES),$(CUDA_TESTS_DIR)/$(n)_shared $(CUDA_TESTS_DIR)/$(n)_static)
CUDA12_FATBIN := $(CUDA_TESTS_DIR)/cudart12_kernel.fatbin

# These are built as `nvcc --default-stream per-thread` builds a program: their NULL stream is each
# thread's per-thread default stream, which cudart reaches through the driver's _ptsz/_ptds forms.
CUDA_TESTS_PER_THREAD := rt_per_thread
$(foreach n,$(CUDA_TESTS_PER_THREAD),$(CUDA_TESTS_DIR)/$(n)_shared $(CUDA_TESTS_DIR)/$(n)_static): \
    CUDA_TESTS_NVCCFLAGS += --default-stream per-thread

$(CUDA_TESTS_DIR)/%_shared: test/cuda/%.cu $(CUDA_TESTS_HEADERS) | $(CUDA_TESTS_DIR)
	$(CUDA_TESTS_NVCC) $(CUDA_TESTS_NVCCFLAGS) -cudart shared -o $@ $<

$(CUDA_TESTS_DIR)/%_static: test/cuda/%.cu $(CUDA_TESTS_HEADERS) | $(CUDA_TESTS_DIR)
	$(CUDA_TESTS_NVCC) $(CUDA_TESTS_NVCCFLAGS) -cudart static -o $@ $<

$(CUDA12_FATBIN): test/cuda/cudart12_kernel.cu | $(CUDA_TESTS_DIR)
	$(CUDA_TESTS_NVCC) -fatbin $(CUDA_TESTS_GENCODE) -o $@ $<

EXTRA_ALL += $(CUDA_TESTS_BINS)

else

CUDA12_FATBIN := test/cuda/cudart12_kernel.fatbin

.PHONY: cuda-tests-skip
cuda-tests-skip:
	@echo "SKIP: nvcc not found, CUDA runtime programs not built"

EXTRA_ALL += cuda-tests-skip

endif

# Explicit rules: unlike the other test_* programs these must not link libcuda.so.1 themselves;
# the NVIDIA libraries they dlopen load it, as they would in an application.
$(BUILD)/test/test_cudart12: test/test_cudart12.c test/check.h test/cuda/rt_props.h $(CUDA12_FATBIN) | $(BUILD)/test
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE '-DRT12_FATBIN="$(abspath $(CUDA12_FATBIN))"' \
	    -o $@ $< -ldl

$(BUILD)/test/test_cublas12: test/test_cublas12.c test/check.h | $(BUILD)/test
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -rdynamic -o $@ $< -ldl

$(BUILD)/test/test_cublas12_compute: test/test_cublas12_compute.c | $(BUILD)/test
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< -ldl -lm

EXTRA_ALL += $(BUILD)/test/test_cudart12 $(BUILD)/test/test_cublas12 $(BUILD)/test/test_cublas12_compute

$(CUDA_TESTS_DIR):
	mkdir -p $@
