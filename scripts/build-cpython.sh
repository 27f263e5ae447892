#!/usr/bin/env bash
# Build a CPython from Debian's source package once, into a cache folder outside the clone, and
# reuse it afterwards. Prints the interpreter's path on its last line.
#
#   scripts/build-cpython.sh 3.13        # -> $CGMEM_PYTHONS/3.13/bin/python3.13
#   scripts/build-cpython.sh 3.13t       # free-threaded (--disable-gil) -> $CGMEM_PYTHONS/3.13t/bin/python3.13t
#
# Only versions whose Debian source package this machine's mirror serves can be built
# (3.13 from trixie today; 3.12, 3.14 and 3.15 are not served). See docs/versions.md.
set -euo pipefail
version=${1:?usage: build-cpython.sh VERSION (e.g. 3.13, or 3.13t for a free-threaded build)}
cache=${CGMEM_PYTHONS:-$HOME/.cache/cgmem_nb/pythons}
prefix="$cache/$version"
python="$prefix/bin/python$version"
minor=${version%t}           # 3.13t -> 3.13: the source package
configure_extra=()
[ "$minor" = "$version" ] || configure_extra=(--disable-gil)

built() { [ -x "$python" ] && "$python" -c 'import ssl, sqlite3, ctypes, zlib, lzma, bz2' 2>/dev/null; }
if built; then echo "$python"; exit 0; fi
# One build per version at a time (two CI runs may start together); the second reuses it.
mkdir -p "$cache"
exec 9>"$cache/.lock-$version"
flock 9
if built; then echo "$python"; exit 0; fi

case "$minor" in
  3.13) suite=trixie ;;
  *) echo "build-cpython.sh: no Debian source for CPython $version is served here (only 3.13 and 3.13t)" >&2; exit 2 ;;
esac

sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
work="$cache/.build-$version"
rm -rf "$work"; mkdir -p "$work/lists/partial"
echo "deb-src http://deb.debian.org/debian $suite main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
          -o "Dir::State::Lists=$work/lists")

echo "build-cpython.sh: installing build dependencies" >&2
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq build-essential libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev \
  libsqlite3-dev libreadline-dev uuid-dev libgdbm-dev libncurses-dev >/dev/null

echo "build-cpython.sh: fetching python$version's source from Debian $suite" >&2
apt-get "${apt_opts[@]}" update -qq >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only --tar-only "python$minor" >/dev/null)
tarball=$(ls "$work"/python"$minor"_*.orig.tar.* | head -n 1)
mkdir -p "$work/src"
tar -xf "$tarball" -C "$work/src" --strip-components=1

echo "build-cpython.sh: building (about 6-12 minutes on 2 cores)" >&2
(cd "$work/src" && ./configure --prefix="$prefix" --with-ensurepip=install "${configure_extra[@]}" >"$work/configure.log" 2>&1 \
  && make -j"$(nproc)" >"$work/make.log" 2>&1 && make install >"$work/install.log" 2>&1) || {
  echo "build-cpython.sh: build failed; logs in $work" >&2; exit 1; }
"$python" -c 'import ssl, sqlite3, ctypes, zlib, lzma, bz2, readline'
rm -rf "$work"
echo "$python"
