#!/bin/bash
# Runs once, when the MySQL volume is first created: one database per service, all owned by MYSQL_USER.
# No service reads another's tables; separate databases keep it that way and let each be moved on its own.
set -euo pipefail
for service in auth pets reports chat embeddings matcher notifier; do
  mysql --protocol=socket -uroot -p"${MYSQL_ROOT_PASSWORD}" <<SQL
CREATE DATABASE IF NOT EXISTS pawgle_${service} CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci;
GRANT ALL PRIVILEGES ON pawgle_${service}.* TO '${MYSQL_USER}'@'%';
SQL
done
