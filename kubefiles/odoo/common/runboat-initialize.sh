#!/bin/bash
#
# Initialize the build: install the code, then create its database with all
# the addons of the repository (or those selected by INCLUDE and EXCLUDE).
#
set -euxo pipefail

bash /runboat/runboat-clone-and-install.sh

oca_wait_for_postgres

# The database may remain from an earlier initialization.
dropdb --if-exists "${PGDATABASE}"

ADDONS=$(manifestoo \
    --select-addons-dir "${ADDONS_DIR}" \
    --select-include "${INCLUDE:-}" \
    --select-exclude "${EXCLUDE:-}" \
    list --separator=,)

unbuffer "$(command -v odoo || command -v openerp-server)" \
    --data-dir=/mnt/data/odoo-data-dir \
    --db-template=template1 \
    --database "${PGDATABASE}" \
    --init "${ADDONS:-base}" \
    --stop-after-init
