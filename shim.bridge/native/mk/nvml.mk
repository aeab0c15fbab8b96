# libnvidia-ml.so.1 (nvml/): NVML answered from the vgpu service; vgpu-probe, the live half of
# `vgpu doctor` and `vgpu smi`; and the Ollama and llama.cpp harnesses OllamaIT runs.

NVML_DIR := nvml
NVML_OBJ := $(BUILD)/obj/nvml
NVML_GEN := $(BUILD)/nvml
NVML_LIB := $(LIB)/libnvidia-ml.so.1
NVML_OBJS := $(NVML_OBJ)/nvml.o $(NVML_OBJ)/nvml_format.o
NVML_HEADERS := $(wildcard $(NVML_DIR)/*.h) $(HEADERS)
NVML_CPPFLAGS := $(CPPFLAGS) -I$(NVML_DIR)
# The connection code libcuda.so.1 and vgpu-ctl use, linked in hidden: one protocol client.
NVML_CONN_OBJS := $(BUILD)/obj/conn.o $(BUILD)/obj/log.o
# Programs that dlopen what they test, so the dynamic loader's own search is what they see.
PROBE_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE

$(NVML_OBJ)/%.o: $(NVML_DIR)/%.c $(NVML_HEADERS) | $(NVML_OBJ)
	$(CC) $(NVML_CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(NVML_GEN)/implemented.txt: $(NVML_OBJS) | $(NVML_GEN)
	nm -g --defined-only $(NVML_OBJS) | awk '$$2 == "T" && $$3 ~ /^nvml/ {print $$3}' | sort -u > $@

$(NVML_GEN)/stubs.c: $(NVML_GEN)/implemented.txt $(NVML_DIR)/exports.txt $(NVML_DIR)/gen-stubs.sh
	$(NVML_DIR)/gen-stubs.sh $(NVML_DIR)/exports.txt $< $@ $(NVML_GEN)/unsupported.txt

$(NVML_GEN)/libnvidia-ml.map: $(NVML_DIR)/exports.txt tools/gen-version-script.sh | $(NVML_GEN)
	tools/gen-version-script.sh $(NVML_DIR)/exports.txt > $@

$(NVML_OBJ)/stubs.o: $(NVML_GEN)/stubs.c | $(NVML_OBJ)
	$(CC) $(CFLAGS) -c -o $@ $<

$(NVML_LIB): $(NVML_OBJS) $(NVML_OBJ)/stubs.o $(NVML_CONN_OBJS) $(NVML_GEN)/libnvidia-ml.map | $(LIB)
	$(CC) -shared -o $@ -Wl,-soname,libnvidia-ml.so.1 -Wl,--version-script,$(NVML_GEN)/libnvidia-ml.map -Wl,-z,defs \
	    -Wl,-z,now $(NVML_OBJS) $(NVML_OBJ)/stubs.o $(NVML_CONN_OBJS) $(LDLIBS)

$(LIB)/libnvidia-ml.so: | $(LIB)
	ln -sf libnvidia-ml.so.1 $@

$(BUILD)/bin/vgpu-probe: $(NVML_DIR)/vgpu_probe.c $(NVML_OBJ)/nvml_format.o $(NVML_HEADERS) | $(BUILD)/bin
	$(CC) $(NVML_CPPFLAGS) $(PROBE_CFLAGS) -o $@ $< $(NVML_OBJ)/nvml_format.o -ldl

# Explicit rules: these two must not be linked with -lcuda like the other test programs.
$(BUILD)/test/test_ollama_probe: test/test_ollama_probe.c | $(BUILD)/test
	$(CC) $(PROBE_CFLAGS) -o $@ $< -ldl

$(BUILD)/test/test_ggml: test/test_ggml.c | $(BUILD)/test
	$(CC) $(PROBE_CFLAGS) -o $@ $< -ldl

# A CUDA and NVML client at once, linked like one: NVML's answers against CUDA's on a live service.
$(BUILD)/test/nvml_check: $(NVML_DIR)/nvml_check.c $(NVML_OBJ)/nvml_format.o $(NVML_HEADERS) test/cuda_api.h $(CUDA_LIB) \
        $(NVML_LIB) $(LIB)/libnvidia-ml.so | $(BUILD)/test
	$(CC) $(NVML_CPPFLAGS) -Itest $(PROBE_CFLAGS) -o $@ $< $(NVML_OBJ)/nvml_format.o -L$(LIB) -lcuda -lnvidia-ml $(LDLIBS)

# Memory quotas as CUDA and NVML report them in one process (QuotaIT).
$(BUILD)/test/test_quota: test/test_quota.c test/check.h $(NVML_HEADERS) test/cuda_api.h $(CUDA_LIB) $(NVML_LIB) \
        $(LIB)/libnvidia-ml.so | $(BUILD)/test
	$(CC) $(NVML_CPPFLAGS) -Itest $(PROBE_CFLAGS) -o $@ $< -L$(LIB) -lcuda -lnvidia-ml $(LDLIBS)

$(BUILD)/test/unit_nvml: $(NVML_DIR)/unit_nvml.c $(NVML_OBJ)/nvml_format.o $(NVML_HEADERS) test/check.h | $(BUILD)/test
	$(CC) $(NVML_CPPFLAGS) -Itest $(PROBE_CFLAGS) -o $@ $< $(NVML_OBJ)/nvml_format.o -ldl

.PHONY: nvml-test-unit
nvml-test-unit: $(BUILD)/test/unit_nvml $(NVML_LIB)
	@# The library exports exactly the list: nothing missing, nothing of ours leaking out.
	nm -D --defined-only $(NVML_LIB) | awk '{print $$3}' | sort | diff -u $(NVML_DIR)/exports.txt -
	@# gen-stubs.sh refuses an implemented entry point the version script would hide.
	echo nvmlNotInTheList > $(NVML_GEN)/extra.txt
	! $(NVML_DIR)/gen-stubs.sh $(NVML_DIR)/exports.txt $(NVML_GEN)/extra.txt /dev/null /dev/null 2>/dev/null
	$(BUILD)/test/unit_nvml $(NVML_LIB) $(NVML_DIR)/exports.txt $(NVML_GEN)/unsupported.txt $(NVML_GEN)/implemented.txt

$(NVML_OBJ) $(NVML_GEN):
	mkdir -p $@

EXTRA_ALL += $(NVML_LIB) $(LIB)/libnvidia-ml.so $(BUILD)/bin/vgpu-probe $(BUILD)/test/test_ollama_probe \
    $(BUILD)/test/test_ggml $(BUILD)/test/nvml_check $(BUILD)/test/test_quota
EXTRA_TEST_UNIT += nvml-test-unit
