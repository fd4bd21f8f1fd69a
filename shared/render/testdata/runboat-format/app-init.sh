#!/bin/sh
set -eu
echo "creating database $APP_DATABASE"
