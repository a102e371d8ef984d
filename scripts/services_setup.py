#!/usr/bin/env python3
"""Provisioning steps for scripts/services.sh (not meant to be called directly).

  services_setup.py databases   drop + create the MLflow backend database, create the app database
  services_setup.py moto        create the S3 bucket and the two Secrets Manager secrets

Everything is read from the environment variables that services.sh exports to it:
  FRAUDRISK_PG_PORT, FRAUDRISK_PG_USER, FRAUDRISK_PG_DB, FRAUDRISK_MLFLOW_DB,
  MOTO_PORT, FRAUDRISK_BUCKET, FRAUDRISK_DB_SECRET_ID, FRAUDRISK_MLFLOW_SECRET_ID,
  FRAUDRISK_MLFLOW_USERNAME, FRAUDRISK_MLFLOW_PASSWORD.
Only loopback (127.0.0.1) is ever contacted.
"""

import json
import os
import sys

HOST = "127.0.0.1"


def env(name):
    value = os.environ.get(name)
    if value is None or value == "":
        sys.exit(f"services_setup: environment variable {name} is not set")
    return value


def databases():
    import psycopg2
    from psycopg2 import sql

    port = int(env("FRAUDRISK_PG_PORT"))
    user = env("FRAUDRISK_PG_USER")
    app_db = env("FRAUDRISK_PG_DB")
    mlflow_db = env("FRAUDRISK_MLFLOW_DB")
    if app_db == mlflow_db:
        sys.exit("services_setup: FRAUDRISK_PG_DB and FRAUDRISK_MLFLOW_DB must differ")
    try:
        conn = psycopg2.connect(host=HOST, port=port, user=user, dbname="postgres", connect_timeout=10)
    except psycopg2.OperationalError as e:
        sys.exit(f"services_setup: cannot connect to PostgreSQL at {HOST}:{port} as {user}: {e}")
    conn.autocommit = True
    with conn.cursor() as cur:
        # Fresh MLflow backend store on every start, so runs and models don't pile up across CI
        # runs. WITH (FORCE) (PostgreSQL 13+) also ends connections a crashed server left behind.
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(mlflow_db)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(mlflow_db)))
        print(f"services_setup: PostgreSQL database {mlflow_db} recreated (MLflow backend store)")
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (app_db,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(app_db)))
            print(f"services_setup: PostgreSQL database {app_db} created (app database)")
        else:
            print(f"services_setup: PostgreSQL database {app_db} exists (app database, kept)")
    conn.close()


def moto():
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    endpoint = f"http://{HOST}:{int(env('MOTO_PORT'))}"
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3})
    s3 = session.client("s3", endpoint_url=endpoint, config=cfg)
    sm = session.client("secretsmanager", endpoint_url=endpoint, config=cfg)

    bucket = env("FRAUDRISK_BUCKET")
    try:
        s3.create_bucket(Bucket=bucket)
        print(f"services_setup: S3 bucket {bucket} created")
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        print(f"services_setup: S3 bucket {bucket} exists")

    port = int(env("FRAUDRISK_PG_PORT"))
    secrets = {
        env("FRAUDRISK_DB_SECRET_ID"): {
            # The shape of an RDS-managed secret.
            "engine": "postgres",
            "host": HOST,
            "port": port,
            "dbname": env("FRAUDRISK_PG_DB"),
            "username": env("FRAUDRISK_PG_USER"),
            "password": "",
        },
        env("FRAUDRISK_MLFLOW_SECRET_ID"): {
            "username": env("FRAUDRISK_MLFLOW_USERNAME"),
            "password": env("FRAUDRISK_MLFLOW_PASSWORD"),
        },
    }
    for name, value in secrets.items():
        body = json.dumps(value)
        try:
            sm.create_secret(Name=name, SecretString=body)
            print(f"services_setup: secret {name} created")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceExistsException":
                raise
            sm.put_secret_value(SecretId=name, SecretString=body)
            print(f"services_setup: secret {name} updated")


def main():
    steps = {"databases": databases, "moto": moto}
    if len(sys.argv) != 2 or sys.argv[1] not in steps:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(steps)}")
    try:
        steps[sys.argv[1]]()
    except SystemExit:
        raise
    except Exception as e:  # one clear line instead of a traceback in the services log
        sys.exit(f"services_setup {sys.argv[1]}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
