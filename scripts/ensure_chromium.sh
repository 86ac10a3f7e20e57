#!/bin/sh
# Make sure the Debian packages `chromium` and `chromium-driver` are installed, for the browser
# tests (tests/test_ops_page_browser.py). Installs them only when they are missing and apt-get
# can be used as root; otherwise it does nothing and exits 0 quietly, and those tests skip
# with a reason. Called by `make test`.
set -u

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    exit 0
fi

echo "ensure_chromium: installing chromium and chromium-driver with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq \
        chromium chromium-driver; } >/dev/null 2>&1; then
    echo "ensure_chromium: apt-get could not install them; the browser tests will skip" >&2
fi
exit 0
