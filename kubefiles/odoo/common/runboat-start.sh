#!/bin/bash
#
# Start Odoo on the database created by the initialization.
#
set -euxo pipefail

if [ ! -f /mnt/data/initialized ]; then
    echo "The build is not initialized: cannot start." >&2
    exit 1
fi

# The virtualenv of the initialization is mounted on /opt/odoo-venv.
pip list

# The Odoo configuration file is not on the data volume: add the code of the
# build to the addons path again.
echo "addons_path=${ADDONS_PATH},${ADDONS_DIR}" >> "${ODOO_RC}"
cat "${ODOO_RC}"

# System packages the addons need are not on the data volume either.
deb_deps=$(oca_list_external_dependencies deb)
if [ -n "${deb_deps}" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -qq --no-install-recommends ${deb_deps}
fi

oca_wait_for_postgres

# --db_user is for Odoo 10 and older.
exec unbuffer "$(command -v odoo || command -v openerp-server)" \
    --data-dir=/mnt/data/odoo-data-dir \
    --no-database-list \
    --database "${PGDATABASE}" \
    --db-filter="^${PGDATABASE}\$" \
    --db_user="${PGUSER:-}" \
    --smtp=localhost \
    --smtp-port=1025
