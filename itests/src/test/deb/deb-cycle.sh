#!/usr/bin/env bash
# The vgpu package's life in a throwaway Debian root: apt-get install ./vgpu_*.deb, a CUDA program
# that reaches the service, an upgrade that keeps an edited conffile, remove, purge, and an install
# next to an existing nvidia-smi.
#
#   deb-cycle.sh DEB WORK
#
# DEB is the package mvn package built; WORK a scratch directory (emptied). The root is a minbase
# Debian bookworm made once by debootstrap, with the package's Java runtime installed, and cached
# in $VGPU_DEB_CACHE (default ~/.cache/vgpu/deb-root); each run works on a copy-on-write overlay
# of it (a plain copy where overlayfs is unavailable) in private mount and PID namespaces, so
# nothing of a run outlives it. Systemd does not run in the root: /run/systemd/system and a
# stand-in systemctl (which logs its calls and runs the unit's ExecStart) let the maintainer
# scripts start, restart and stop the service as they would under systemd.
#
# Prints "ok ..." per check and ends with "cycle passed"; a failed check prints "FAIL: ..." and
# exits 1. When the root cannot be made (not root, no debootstrap, no network, a slow mirror) it
# prints one line "SKIP: ..." and exits 77.
#
# Environment: VGPU_DEB_CACHE, VGPU_DEB_MIRROR (default http://deb.debian.org/debian),
# VGPU_DEB_SUITE (default bookworm), VGPU_DEB_BOOTSTRAP_TIMEOUT (seconds for making the root,
# default 600).
set -euo pipefail

SUITE=${VGPU_DEB_SUITE:-bookworm}
MIRROR=${VGPU_DEB_MIRROR:-http://deb.debian.org/debian}
CACHE=${VGPU_DEB_CACHE:-${HOME:-/root}/.cache/vgpu/deb-root}
BOOTSTRAP_TIMEOUT=${VGPU_DEB_BOOTSTRAP_TIMEOUT:-600}
# What the base root holds besides minbase: the package's Java runtime (its Depends), so that
# installing the package needs no network.
BASE_PACKAGES="default-jre-headless"
BASE=$CACHE/$SUITE
PATH_IN_ROOT=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok $*"; }

# ---- the cached base root ----------------------------------------------------------------------

# Runs "$@" chrooted into $1 with the mounts a package manager and a JVM need; only inside a
# private mount namespace (the mounts vanish with it).
mount_root() {
    local r=$1
    mount -t proc proc "$r/proc"
    mount --bind /dev "$r/dev"
    mount --bind /dev/pts "$r/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
    mount -t tmpfs -o mode=755 tmpfs "$r/run"
    mkdir -m 1777 "$r/run/lock"
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
}

in_root() {
    local r=$1
    shift
    chroot "$r" /usr/bin/env -i PATH=$PATH_IN_ROOT HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Makes $BASE: debootstrap --variant=minbase, then the Java runtime (run in a mount namespace).
make_base() {
    local new=$BASE.new log=$CACHE/$SUITE.log
    rm -rf "$new"
    mkdir -p "$new"
    # In a PID namespace of their own, so that a timeout ends every process they started.
    if ! timeout "$BOOTSTRAP_TIMEOUT" unshare --pid --fork --kill-child \
            debootstrap --variant=minbase "$SUITE" "$new" "$MIRROR" > "$log" 2>&1; then
        rm -rf "$new"
        skip "could not make a $SUITE root: debootstrap from $MIRROR failed or took over ${BOOTSTRAP_TIMEOUT}s (log: $log)"
    fi
    # What is left of the time bound, at least 30s.
    local left=$((BOOTSTRAP_TIMEOUT - (SECONDS - START)))
    [ $left -ge 30 ] || left=30
    if ! timeout $left unshare --mount --pid --fork --kill-child --propagation private bash -c "$(declare -f mount_root in_root); PATH_IN_ROOT='$PATH_IN_ROOT'
            set -e; mount_root '$new'
            in_root '$new' apt-get -q update
            in_root '$new' apt-get -q -y --no-install-recommends install $BASE_PACKAGES
            in_root '$new' apt-get clean" >> "$log" 2>&1; then
        rm -rf "$new"
        skip "could not install $BASE_PACKAGES into the $SUITE root from $MIRROR (log: $log)"
    fi
    echo "$BASE_PACKAGES" > "$new/.vgpu-base"
    rm -rf "$BASE"
    mv "$new" "$BASE"
}

# ---- the cycle, inside private mount and PID namespaces ---------------------------------------

# The stand-in systemctl: logs every call to /run/systemctl.log and runs vgpu.service from its
# installed unit file (ExecStart, Environment, RuntimeDirectory), as systemd would.
fake_systemctl() {
    cat <<'EOF'
#!/bin/sh
echo "systemctl $*" >> /run/systemctl.log
unit=/lib/systemd/system/vgpu.service
pidfile=/run/vgpu-service.pid
active() {
    [ -f $pidfile ] || return 1
    pid=$(cat $pidfile)
    [ -r /proc/$pid/stat ] && ! grep -q ') Z ' /proc/$pid/stat
}
start() {
    active && return 0
    dir=$(sed -n 's/^RuntimeDirectory=//p' $unit)
    mkdir -p "/run/$dir" && chmod "$(sed -n 's/^RuntimeDirectoryMode=//p' $unit)" "/run/$dir"
    (
        for e in $(sed -n 's/^Environment=//p' $unit); do export "$e"; done
        $(sed -n 's/^ExecStart=//p' $unit) < /dev/null >> /var/log/vgpu-service.log 2>&1 &
        echo $! > $pidfile
    )
}
stop() {
    active || return 0
    kill -TERM "$pid"
    for _ in $(seq 1 150); do active || break; sleep 0.1; done
    active && kill -KILL "$pid"
    rm -rf "/run/$(sed -n 's/^RuntimeDirectory=//p' $unit)" $pidfile
}
action=
for a in "$@"; do
    case "$a" in -*) ;; *) [ -n "$action" ] || action=$a ;; esac
done
case "$action" in
    "") echo "systemd 252 (vgpu test stand-in)" ;;
    is-enabled)
        if [ -L /etc/systemd/system/multi-user.target.wants/vgpu.service ]; then echo enabled; else echo disabled; exit 1; fi ;;
    is-active) active ;;
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
esac
exit 0
EOF
}

cycle() {
    local deb=$1 work=$2 R=$2/root
    if [ "${VGPU_DEB_OVERLAY:-}" = 1 ]; then
        mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$work/upper,workdir=$work/ovl" "$R"
    fi
    mount_root "$R"
    mkdir -p "$R/run/systemd/system" "$R/tmp/pkg"
    # In /usr/sbin: on apt's PATH for dpkg (DPkg::Path, /usr/sbin:/usr/bin:/sbin:/bin), so
    # deb-systemd-invoke runs it, but not where deb-systemd-helper looks for a systemctl to run
    # `systemctl preset` with (/bin, /usr/bin): it enables the unit with its own links, as it
    # does wherever systemd is not installed.
    fake_systemctl > "$R/usr/sbin/systemctl"
    chmod 755 "$R/usr/sbin/systemctl"
    cp "$deb" "$R/tmp/pkg/"
    local pkg=/tmp/pkg/$(basename "$deb")
    r() { in_root "$R" "$@"; }
    apt_get() { r apt-get -q -y --no-install-recommends "$@" < /dev/null; }
    service_log() { echo "--- service log:"; tail -n 40 "$R/var/log/vgpu-service.log" 2>/dev/null || true; }
    await_service() {
        for _ in $(seq 1 600); do
            r /opt/vgpu/lib/vgpu-ctl status > /dev/null 2>&1 && return 0
            sleep 0.1
        done
        service_log
        fail "the service did not answer at /run/vgpu/vgpu.sock within 60s"
    }
    service_pid() { cat "$R/run/vgpu-service.pid" 2>/dev/null || true; }
    # A CUDA program as an unprivileged member of the group vgpu, found libcuda.so.1 through the
    # loader cache only: vgpu-demo copied where its $ORIGIN/../lib rpath leads nowhere.
    cuda_program() {
        local out
        out=$(r setpriv --reuid=cuda --regid=cuda --init-groups /srv/cuda/bin/vgpu-demo 2>&1) || { echo "$out"; service_log; fail "vgpu-demo failed ($1)"; }
        [[ $out == *"all results correct"* && $out == *PASS* ]] || { echo "$out"; fail "vgpu-demo gave no correct result ($1)"; }
        ok "a CUDA program (vgpu-demo, user cuda in group vgpu) runs SAXPY on the service: all results correct ($1)"
    }

    # -- install
    local t0=$SECONDS out
    out=$(apt_get install "$pkg" 2>&1) || { echo "$out"; fail "apt-get install $pkg"; }
    echo "$out" | sed -n 's/^\(registered\|linked\|not linking\|kept\) /  postinst: &/p'
    local version
    version=$(r dpkg-query -W -f='${Status} ${Version}' vgpu)
    [[ $version == "install ok installed "* ]] || fail "vgpu is not installed: $version"
    version=${version##* }
    [ "$(r sh -c 'zcat /usr/share/doc/vgpu/changelog.gz | head -n 1')" = "vgpu ($version) unstable; urgency=medium" ] \
        || fail "the changelog does not name version $version"
    ok "apt-get install ./$(basename "$deb"): vgpu $version installed in $((SECONDS - t0))s"
    for f in /opt/vgpu/bin/vgpu /opt/vgpu/bin/vgpu-service /opt/vgpu/lib/vgpu-ctl /opt/vgpu/lib/vgpu-probe; do
        [ -x "$R$f" ] || fail "$f is not executable"
    done
    for f in /opt/vgpu/lib/libcuda.so.1 /opt/vgpu/lib/libnvidia-ml.so.1 /opt/vgpu/lib/vgpu-service.jar /opt/vgpu/README.md \
             /lib/systemd/system/vgpu.service /usr/share/doc/vgpu/copyright; do
        [ -f "$R$f" ] || fail "$f is missing"
    done
    [ "$(readlink "$R/opt/vgpu/conf")" = /etc/vgpu ] || fail "/opt/vgpu/conf does not link to /etc/vgpu"
    [ "$(readlink "$R/opt/vgpu/lib/libcuda.so")" = libcuda.so.1 ] || fail "/opt/vgpu/lib/libcuda.so does not link to libcuda.so.1"
    local conffiles
    conffiles=$(r dpkg-query -W -f='${Conffiles}' vgpu | awk '{print $1}' | sort | tr '\n' ' ')
    [ "$conffiles" = "/etc/vgpu/README /etc/vgpu/io.vgpu.backend.passthrough.cfg.example /etc/vgpu/io.vgpu.bridge.cfg /etc/vgpu/io.vgpu.bridge.cfg.example /etc/vgpu/io.vgpu.router.cfg " ] \
        || fail "conffiles: $conffiles"
    ok "files: /opt/vgpu (bin/, lib/, conf -> /etc/vgpu), the unit, conffiles $conffiles"
    [ "$(cat "$R/etc/ld.so.conf.d/vgpu.conf")" = /opt/vgpu/lib ] || fail "/etc/ld.so.conf.d/vgpu.conf does not name /opt/vgpu/lib"
    local cache
    cache=$(r ldconfig -p)
    for lib in libcuda.so.1 libnvidia-ml.so.1; do
        grep -q "^	$lib (libc6,x86-64) => /opt/vgpu/lib/$lib\$" <<< "$cache" || fail "the loader cache has no $lib => /opt/vgpu/lib/$lib"
    done
    ok "loader: /etc/ld.so.conf.d/vgpu.conf, ldconfig -p has libcuda.so.1 and libnvidia-ml.so.1 => /opt/vgpu/lib"
    r getent group vgpu > /dev/null || fail "no group vgpu"
    [ "$(readlink "$R/etc/systemd/system/multi-user.target.wants/vgpu.service")" = /lib/systemd/system/vgpu.service ] \
        || fail "vgpu.service is not enabled (no multi-user.target.wants link)"
    [ "$(readlink "$R/usr/bin/nvidia-smi")" = /opt/vgpu/bin/nvidia-smi ] || fail "/usr/bin/nvidia-smi is not vgpu's link"
    grep -qx 'systemctl --quiet --system start vgpu.service' "$R/run/systemctl.log" || { cat "$R/run/systemctl.log" || true; fail "postinst did not start vgpu.service"; }
    ok "group vgpu, vgpu.service enabled and started (systemctl start), /usr/bin/nvidia-smi -> /opt/vgpu/bin/nvidia-smi"
    await_service
    [ "$(r stat -c "%G %A" /run/vgpu/vgpu.sock)" = "vgpu srw-rw----" ] || fail "socket: $(r stat -c "%G %A" /run/vgpu/vgpu.sock)"
    ok "the service answers at /run/vgpu/vgpu.sock (group vgpu, srw-rw----)"
    r useradd --no-create-home --groups vgpu cuda
    r install -D -m 755 /opt/vgpu/bin/vgpu-demo /srv/cuda/bin/vgpu-demo
    # Whole outputs into variables: with pipefail, grep -q closing the pipe early fails the writer.
    local linked
    linked=$(r ldd /srv/cuda/bin/vgpu-demo)
    grep -q 'libcuda.so.1 => /opt/vgpu/lib/libcuda.so.1' <<<"$linked" || fail "ldd: $linked"
    cuda_program "after install"
    out=$(r setpriv --reuid=cuda --regid=cuda --init-groups nvidia-smi -L 2>&1) || fail "nvidia-smi -L: $out"
    [[ $out == "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-"* ]] || fail "nvidia-smi -L: $out"
    ok "nvidia-smi -L: $out"
    out=$(r setpriv --reuid=nobody --regid=nogroup --clear-groups /srv/cuda/bin/vgpu-demo 2>&1) && fail "a user outside group vgpu reached the service: $out"
    [[ $out == *"ermission denied"* ]] || fail "a user outside group vgpu failed, but not for want of access: $out"
    ok "a user outside group vgpu is refused: $(grep -m1 -i 'permission denied' <<< "$out")"
    out=$(r /opt/vgpu/bin/vgpu doctor 2>&1) || { echo "$out"; fail "vgpu doctor"; }
    echo "$out" | sed 's/^/  doctor: /'

    # -- upgrade: a newer build whose README (a conffile the admin left alone) changed, while the
    # admin edited io.vgpu.router.cfg (unchanged in the new build): dpkg keeps the edit, without
    # asking, and takes the new README.
    echo "# edited by the admin" >> "$R/etc/vgpu/io.vgpu.router.cfg"
    echo "backend.id = mock2" > "$R/etc/vgpu/io.vgpu.backend.mock.gpu-a100.cfg"
    local v2=$version+upgrade1 pid1
    pid1=$(service_pid)
    r dpkg --compare-versions "$v2" gt "$version" || fail "$v2 is not newer than $version"
    r dpkg-deb -R "$pkg" /tmp/v2
    sed -i "s/^Version: .*/Version: $v2/" "$R/tmp/v2/DEBIAN/control"
    echo "Upgraded by the test." >> "$R/tmp/v2/etc/vgpu/README"
    r sh -c 'cd /tmp/v2 && find . -type f ! -path "./DEBIAN/*" -printf "%P\0" | sort -z | xargs -0 md5sum > DEBIAN/md5sums'
    r dpkg-deb --root-owner-group -Zgzip -b /tmp/v2 /tmp/pkg/vgpu_upgrade.deb > /dev/null
    t0=$SECONDS
    out=$(apt_get install /tmp/pkg/vgpu_upgrade.deb 2>&1) || { echo "$out"; fail "apt-get install (upgrade to $v2)"; }
    [ "$(r dpkg-query -W -f='${Version}' vgpu)" = "$v2" ] || fail "the upgrade did not install $v2"
    grep -qx '# edited by the admin' "$R/etc/vgpu/io.vgpu.router.cfg" || fail "the upgrade lost the admin's edit of io.vgpu.router.cfg"
    [ ! -e "$R/etc/vgpu/io.vgpu.router.cfg.dpkg-new" ] && [ ! -e "$R/etc/vgpu/io.vgpu.router.cfg.dpkg-dist" ] \
        || fail "the upgrade left io.vgpu.router.cfg.dpkg-*"
    grep -qx 'Upgraded by the test.' "$R/etc/vgpu/README" || fail "the upgrade kept the old, unedited README"
    [ -f "$R/etc/vgpu/io.vgpu.backend.mock.gpu-a100.cfg" ] || fail "the upgrade removed the admin's own file"
    ok "upgrade to $v2 in $((SECONDS - t0))s: the edited conffile io.vgpu.router.cfg kept, the unedited README updated"
    grep -qx 'systemctl --quiet --system restart vgpu.service' "$R/run/systemctl.log" || { cat "$R/run/systemctl.log" || true; fail "postinst did not restart vgpu.service"; }
    await_service
    [ "$(service_pid)" != "$pid1" ] || fail "the service was not restarted"
    [ "$(r sh -c 'ldconfig -p | grep -c "=> /opt/vgpu/lib/"')" -ge 2 ] || fail "the loader cache lost vgpu's libraries"
    ok "the service restarted (pid $pid1 -> $(service_pid)), the loader entry stays"
    cuda_program "after upgrade"

    # -- remove: the service stops, the loader entry and the nvidia-smi link go, the conffiles stay.
    pid1=$(service_pid)
    t0=$SECONDS
    out=$(apt_get remove vgpu 2>&1) || { echo "$out"; fail "apt-get remove vgpu"; }
    grep -qx 'systemctl stop vgpu.service' "$R/run/systemctl.log" || { cat "$R/run/systemctl.log" || true; fail "prerm did not stop vgpu.service"; }
    [ ! -d "$R/proc/$pid1" ] || grep -q ') Z ' "$R/proc/$pid1/stat" || fail "the service (pid $pid1) still runs after remove"
    [ ! -e "$R/run/vgpu/vgpu.sock" ] || fail "the socket is still there after remove"
    [[ $(r dpkg-query -W -f='${Status}' vgpu) == "deinstall ok config-files" ]] || fail "status after remove: $(r dpkg-query -W -f='${Status}' vgpu)"
    [ ! -e "$R/etc/ld.so.conf.d/vgpu.conf" ] || fail "/etc/ld.so.conf.d/vgpu.conf is still there after remove"
    local cache
    cache=$(r ldconfig -p)
    ! grep -q 'libcuda.so.1\|libnvidia-ml.so.1' <<<"$cache" || fail "the loader cache still has vgpu's libraries after remove"
    [ ! -e "$R/usr/bin/nvidia-smi" ] && [ ! -L "$R/usr/bin/nvidia-smi" ] || fail "/usr/bin/nvidia-smi is still there after remove"
    [ ! -e "$R/opt/vgpu" ] && [ ! -e "$R/lib/systemd/system/vgpu.service" ] || fail "files left after remove: $(ls "$R/opt/vgpu" 2>&1)"
    grep -qx '# edited by the admin' "$R/etc/vgpu/io.vgpu.router.cfg" || fail "remove dropped the conffiles"
    r getent group vgpu > /dev/null || fail "remove dropped the group vgpu"
    ok "apt-get remove in $((SECONDS - t0))s: the service stopped (systemctl stop), no loader entry, no libcuda.so.1 in the cache, no nvidia-smi, no /opt/vgpu; /etc/vgpu and the group stay"

    # -- purge: the rest.
    t0=$SECONDS
    out=$(apt_get purge vgpu 2>&1) || { echo "$out"; fail "apt-get purge vgpu"; }
    local status
    status=$(r dpkg-query -W -f='${Status}' vgpu 2> /dev/null || true)
    [[ -z $status || $status == *not-installed ]] || fail "status after purge: $status"
    [ ! -e "$R/etc/vgpu" ] || fail "/etc/vgpu is still there after purge: $(ls "$R/etc/vgpu")"
    ! r getent group vgpu > /dev/null || fail "the group vgpu is still there after purge"
    local left
    left=$(cd "$R" && find etc/systemd var/lib/systemd -name 'vgpu*' 2>/dev/null | tr '\n' ' ')
    [ -z "$left" ] || fail "the unit's state is still there after purge: $left"
    [ ! -e "$R/etc/ld.so.conf.d/vgpu.conf" ] || fail "/etc/ld.so.conf.d/vgpu.conf after purge"
    ok "apt-get purge in $((SECONDS - t0))s: no /etc/vgpu, no group vgpu, no unit state"

    # -- NVIDIA's nvidia-smi is there first: the package links none and removal leaves it.
    printf '#!/bin/sh\necho NVIDIA\n' > "$R/usr/bin/nvidia-smi"
    chmod 755 "$R/usr/bin/nvidia-smi"
    out=$(apt_get install "$pkg" 2>&1) || { echo "$out"; fail "apt-get install next to NVIDIA's nvidia-smi"; }
    [[ $out == *"kept /usr/bin/nvidia-smi: it is not vgpu's"* ]] || { echo "$out"; fail "postinst did not say it kept NVIDIA's nvidia-smi"; }
    [ "$(r nvidia-smi)" = NVIDIA ] || fail "the package replaced NVIDIA's nvidia-smi"
    await_service
    out=$(apt_get purge vgpu 2>&1) || { echo "$out"; fail "apt-get purge (next to NVIDIA's nvidia-smi)"; }
    [ "$(r nvidia-smi)" = NVIDIA ] || fail "purge removed NVIDIA's nvidia-smi"
    ok "next to NVIDIA's nvidia-smi: install links none, purge leaves it"
}

# ---- main --------------------------------------------------------------------------------------

if [ "${1:-}" = --inner ]; then
    shift
    cycle "$@"
    echo "cycle passed"
    exit 0
fi

[ $# -eq 2 ] || { echo "usage: $0 DEB WORK" >&2; exit 2; }
DEB=$(readlink -f "$1")
WORK=$2
START=$SECONDS
[ -f "$DEB" ] || fail "no package $DEB"
[ "$(id -u)" = 0 ] || skip "the install cycle needs root (chroot, mounts, dpkg in the test root)"
for tool in chroot unshare mount flock timeout; do
    command -v $tool > /dev/null || skip "$tool is not installed"
done
unshare --mount --pid --fork true 2> /dev/null || skip "unshare --mount --pid is not permitted here"

mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9
if [ -f "$BASE/.vgpu-base" ] && [ "$(cat "$BASE/.vgpu-base")" = "$BASE_PACKAGES" ]; then
    echo "test root: the cached $SUITE root $BASE"
else
    command -v debootstrap > /dev/null || skip "debootstrap is not installed (apt-get install debootstrap) and no $SUITE root is cached in $CACHE"
    echo "test root: making a minbase $SUITE root with $BASE_PACKAGES in $BASE (once; bounded by ${BOOTSTRAP_TIMEOUT}s)"
    make_base
    echo "test root: made in $((SECONDS - START))s"
fi

rm -rf "$WORK"
mkdir -p "$WORK/root" "$WORK/upper" "$WORK/ovl"
overlay=0
if unshare --mount --propagation private mount -t overlay overlay \
        -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/ovl" "$WORK/root" 2> /dev/null; then
    overlay=1
    echo "test root: an overlay of the cached root"
else
    cp -a "$BASE/." "$WORK/root/"
    echo "test root: a copy of the cached root (no overlayfs here)"
fi
# The cache stays locked while the overlay uses it.
rc=0
VGPU_DEB_OVERLAY=$overlay unshare --mount --pid --fork --propagation private "$0" --inner "$DEB" "$WORK" || rc=$?
rm -rf "$WORK"
echo "cycle time: $((SECONDS - START))s"
exit $rc
