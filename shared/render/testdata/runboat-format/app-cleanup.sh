#!/bin/sh
set -eu
echo "dropping database $APP_DATABASE"
