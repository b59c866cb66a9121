#!/usr/bin/env bash
# Installs a Vulkan loader and Mesa's Vulkan drivers on Debian bookworm, so
# that the `webgpu` backend (Dawn, through Vulkan) finds an adapter: a real
# GPU's Mesa driver where there is one, otherwise lavapipe (llvmpipe), Mesa's
# software Vulkan device, which lets CI run the webgpu tests without a GPU.
#
# Bookworm's own Mesa (22.3) is too old: Dawn rejects its lavapipe device
# (it lacks shaderUniformBufferArrayDynamicIndexing and friends). Mesa 24 or
# newer is needed, which bookworm has only in bookworm-backports; this script
# adds that suite when it is missing.
#
# Idempotent; run as root. Prints the Vulkan devices it finds at the end.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-vulkan.sh: run as root (it installs Debian packages)." >&2
  exit 1
fi
if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
  echo "install-vulkan.sh: written for Debian bookworm; this is $(. /etc/os-release && echo "${PRETTY_NAME:-unknown}")." >&2
  echo "Install your distribution's libvulkan1 and Mesa Vulkan drivers (Mesa 24 or newer) instead." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
minimum_mesa=24

installed_version() {
  dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '$3 == "installed" { print $4 }'
}

mesa_ok() {
  local version
  version="$(installed_version mesa-vulkan-drivers)"
  [ -n "$version" ] && dpkg --compare-versions "$version" ge "$minimum_mesa" &&
    [ -n "$(installed_version libvulkan1)" ] && [ -n "$(installed_version vulkan-tools)" ]
}

if mesa_ok; then
  echo "mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers) and libvulkan1 $(installed_version libvulkan1) are installed."
else
  # The backports suite, on the same mirror as the main suites, unless some source already names it.
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror="$(grep -rhs '^URIs:.*debian/\?$' /etc/apt/sources.list.d/*.sources | awk '{ print $2; exit }')"
    mirror="${mirror:-http://deb.debian.org/debian}"
    echo "Adding bookworm-backports ($mirror) to /etc/apt/sources.list.d/bookworm-backports.sources"
    cat >/etc/apt/sources.list.d/bookworm-backports.sources <<EOF
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt-get update
  elif ! apt-cache policy mesa-vulkan-drivers | grep -q 'bookworm-backports'; then
    apt-get update
  fi
  # -t prefers backports for these packages and for the Mesa libraries they need at the same version.
  apt-get install -y --no-install-recommends -t bookworm-backports libvulkan1 mesa-vulkan-drivers vulkan-tools
  if ! mesa_ok; then
    echo "install-vulkan.sh: mesa-vulkan-drivers is $(installed_version mesa-vulkan-drivers), older than $minimum_mesa; Dawn will not accept its software device." >&2
    exit 1
  fi
fi

# The Vulkan loader complains on every start without a runtime folder.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
  trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT
fi
echo "Vulkan devices:"
if ! vulkaninfo --summary 2>/dev/null | awk '/^Devices:/ { on = 1 } on && /deviceName|deviceType|driverInfo|apiVersion/ { sub(/^[ \t]+/, "  "); print }'; then
  echo "  none: vulkaninfo failed. Run 'vulkaninfo --summary' to see why." >&2
  exit 1
fi
