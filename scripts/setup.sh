#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine with the .NET SDK; idempotent, skips what is present.
set -euo pipefail

# TorchSharp 0.107's native library needs GLIBCXX_3.4.32 (libstdc++ from GCC 13+); Debian 12 ships 3.4.30.
# Take libstdc++6 from Debian 13, pinned so every other package stays on Debian 12.
# (awk reads all of ldconfig's output: an early exit would SIGPIPE ldconfig and fail the pipeline under pipefail.)
libstdcxx=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ && !found { print $NF; found = 1 }' || true)
libstdcxx=${libstdcxx:-/lib/x86_64-linux-gnu/libstdc++.so.6}
if grep -q GLIBCXX_3.4.32 "$libstdcxx" 2>/dev/null; then
  echo "setup: $libstdcxx has GLIBCXX_3.4.32"
else
  echo "setup: installing libstdc++6 from Debian 13 (TorchSharp needs GLIBCXX_3.4.32)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo 'deb http://deb.debian.org/debian trixie main' | $sudo tee /etc/apt/sources.list.d/trixie.list >/dev/null
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 50\n' | $sudo tee /etc/apt/preferences.d/trixie >/dev/null
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q -t trixie libstdc++6
  grep -q GLIBCXX_3.4.32 "$libstdcxx" || { echo "setup: libstdc++ still lacks GLIBCXX_3.4.32" >&2; exit 1; }
fi

# ICU: BERT's uncased tokenizer strips accents through Unicode decomposition (NFD), which .NET does with ICU only
# (invariant globalization silently skips it; see Runtime/Data/Text/Vocabulary.cs). grep reads all of ldconfig's output
# (no -q): an early exit would SIGPIPE ldconfig under pipefail.
if ldconfig -p 2>/dev/null | grep 'libicuuc\.so' >/dev/null; then
  echo "setup: ICU present"
else
  echo "setup: installing ICU (libicu72) for Unicode normalization"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q libicu72
fi

# Native AOT (the predict deployment binary) links with clang (or gcc when clang is absent) and needs zlib's headers.
if { command -v clang >/dev/null || command -v gcc >/dev/null; } && [ -e /usr/include/zlib.h ]; then
  echo "setup: a C toolchain and zlib headers present (native AOT)"
else
  echo "setup: installing clang and zlib1g-dev for the native AOT publish of predict"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q clang zlib1g-dev
fi

command -v dotnet >/dev/null || { echo "setup: the .NET SDK (10.0) is required: https://dot.net" >&2; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
