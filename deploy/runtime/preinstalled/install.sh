#!/bin/sh
# Install numaspread as a pre-installed NRI plugin: the runtime itself starts
# it, with no arguments, over a socket pair, and hands it the configuration.
#
#   deploy/runtime/preinstalled/install.sh [BINARY [CONFIG]]
#
# BINARY defaults to bin/numaspread (make build), CONFIG to
# deploy/config.toml. The environment may override PLUGIN_PATH
# (/opt/nri/plugins), PLUGIN_CONFIG_PATH (/etc/nri/conf.d) and IDX (90): they
# must match the runtime's plugin_path, plugin_config_path (CRI-O:
# nri_plugin_dir, nri_plugin_config_dir).
#
# It writes
#   $PLUGIN_PATH/$IDX-numaspread              the binary (NN-name: the runtime
#                                             refuses to start any plugin if
#                                             one executable there is misnamed)
#   $PLUGIN_CONFIG_PATH/$IDX-numaspread.conf  the TOML configuration, passed
#                                             to the plugin at Configure
# then checks them. The runtime starts pre-installed plugins only when it
# starts, and does not restart one that dies: restart the runtime after
# installing (systemctl restart containerd, or crio). The plugin logs to
# /var/log/numaspread.log (the runtime discards its output).
set -eu

BINARY=${1:-bin/numaspread}
CONFIG=${2:-deploy/config.toml}
PLUGIN_PATH=${PLUGIN_PATH:-/opt/nri/plugins}
PLUGIN_CONFIG_PATH=${PLUGIN_CONFIG_PATH:-/etc/nri/conf.d}
IDX=${IDX:-90}

case $IDX in
[0-9][0-9]) ;;
*) echo "install.sh: IDX=$IDX is not two digits" >&2; exit 2 ;;
esac
[ -x "$BINARY" ] || { echo "install.sh: $BINARY is not an executable (run make build)" >&2; exit 2; }
[ -f "$CONFIG" ] || { echo "install.sh: no configuration at $CONFIG" >&2; exit 2; }

# Check the configuration and the machine before the runtime sees them: a bad
# configuration would fail the plugin at every runtime start. Other FAIL
# lines (say, no NRI socket yet) are the operator's to read, not fatal here.
report=$("$BINARY" check --config "$CONFIG" --nri-plugin-dir "$PLUGIN_PATH" --nri-conf-dir "$PLUGIN_CONFIG_PATH" 2>&1) || true
if printf '%s\n' "$report" | grep -Eq '^FAIL: (config|topology):'; then
	printf '%s\n' "$report" | grep -E '^FAIL: (config|topology):' >&2
	echo "install.sh: not installed" >&2
	exit 1
fi

mkdir -p "$PLUGIN_PATH" "$PLUGIN_CONFIG_PATH"
# Copy, then rename: the runtime never sees a half-written executable.
cp "$BINARY" "$PLUGIN_PATH/.$IDX-numaspread.tmp"
chmod 0755 "$PLUGIN_PATH/.$IDX-numaspread.tmp"
mv -f "$PLUGIN_PATH/.$IDX-numaspread.tmp" "$PLUGIN_PATH/$IDX-numaspread"
cp "$CONFIG" "$PLUGIN_CONFIG_PATH/.$IDX-numaspread.conf.tmp"
chmod 0644 "$PLUGIN_CONFIG_PATH/.$IDX-numaspread.conf.tmp"
mv -f "$PLUGIN_CONFIG_PATH/.$IDX-numaspread.conf.tmp" "$PLUGIN_CONFIG_PATH/$IDX-numaspread.conf"

echo "installed $PLUGIN_PATH/$IDX-numaspread and $PLUGIN_CONFIG_PATH/$IDX-numaspread.conf"
echo "now restart the runtime (systemctl restart containerd, or crio) to start it"
