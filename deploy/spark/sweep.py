"""The program `spark-submit` runs for the monthly sweep (docs/spark.md): the same options as
`benefits sweep`, always with the Spark engine; the master is spark-submit's.

    spark-submit --master yarn ... deploy/spark/sweep.py --data hdfs://… --month 2025-01 --out hdfs://…
"""

from benefits.engines.spark import main

main()
