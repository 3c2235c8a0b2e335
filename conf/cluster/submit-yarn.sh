#!/usr/bin/env bash
# Submits Lathe jobs to YARN in client mode (schedulers should use client mode: in cluster mode
# spark-submit exits 0 even when the driver fails). Build the job jar first:
#   mvn -B package -Pdist -DskipTests        -> spark-jobs/target/lathe-jobs.jar
set -euo pipefail
JAR=${LATHE_JAR:-spark-jobs/target/lathe-jobs.jar}
CONF=${LATHE_SPARK_CONF:-conf/cluster/spark-defaults.conf}
# data-prep: raw instruction data -> tokenised Parquet on HDFS
spark-submit --master yarn --deploy-mode client --properties-file "$CONF" \
  --class ai.lathe.prep.PrepJob "$JAR" \
  --config prep.yaml --set input=hdfs:///raw/instructions/ --set output=hdfs:///lathe/prepared/sft \
  --set tokenizer=/local/models/llama/tokenizer.json
# distributed SFT: the base model is read from HDFS once per executor JVM
spark-submit --master yarn --deploy-mode client --properties-file "$CONF" \
  --num-executors 8 --executor-cores 4 \
  --class ai.lathe.jobs.SftTrainJob "$JAR" \
  --config sft.yaml --set model=hdfs:///lathe/models/llama --set data=hdfs:///lathe/prepared/sft \
  --set output=hdfs:///lathe/adapters/sft --set distributed.partitions=32
