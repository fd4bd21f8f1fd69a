#!/bin/sh
#
# Drop the database of the build, disconnecting whoever still uses it.
#
set -eux

dropdb --if-exists --force "${PGDATABASE}"
