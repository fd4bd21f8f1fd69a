#!/bin/bash
#
# Fetch the code of the build and install it in the Odoo virtualenv, then keep
# a copy of that virtualenv on the data volume for the Odoo container.
#
set -euxo pipefail

# Start from an empty data volume: this may be a new initialization after a
# failed or outdated one.
rm -rf /mnt/data/*
rm -rf "${ADDONS_DIR}"
mkdir -p "${ADDONS_DIR}"
cd "${ADDONS_DIR}"

# A tarball of the commit rather than a git clone, which needs far more memory.
curl --fail --silent --show-error --location \
    "https://github.com/${RUNBOAT_GIT_REPO}/tarball/${RUNBOAT_GIT_REF}" \
    | tar -xzf - --strip-components=1

case "${INSTALL_METHOD:-oca_install_addons}" in
    oca_install_addons)
        oca_install_addons
        ;;
    editable_pip_install)
        pip install -e .
        ;;
    *)
        echo "Unknown INSTALL_METHOD '${INSTALL_METHOD}'." >&2
        exit 1
        ;;
esac

# The Odoo container mounts this copy on /opt/odoo-venv, so that it starts
# without reinstalling anything.
cp -a /opt/odoo-venv/ /mnt/data/odoo-venv

touch /mnt/data/initialized
