#!/bin/bash
# The GPU run of backend.passthrough, for a machine with an NVIDIA GPU and driver: builds vgpu,
# then runs PassthroughGpuIT (the conformance suite against passthrough on the real card, the
# nvcc-built runtime programs and cuBLAS 12.6 through a service whose backend is passthrough) and
# prints what ran. A few minutes; extra arguments go to both mvn runs (e.g. -o, -Dmaven.repo.local=...).
if [ ! -e /proc/driver/nvidia/version ]; then
    echo "gpu-check: skipped: no NVIDIA driver on this machine (/proc/driver/nvidia/version is absent)"
    exit 0
fi
cd "$(dirname "$0")/.." || exit 1
mvn -B -q install -DskipTests "$@" || exit 1
log=itests/target/gpu-check.log
mvn -B verify -pl itests -Dit.test=PassthroughGpuIT -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false \
    -Dfailsafe.failIfNoSpecifiedTests=false "$@" > "$log" 2>&1
rc=$?
grep -E "^(GPU|SKIP)|Tests run:|FAILURE|BUILD" "$log"
echo "gpu-check: exit $rc, full log in $log"
exit $rc
