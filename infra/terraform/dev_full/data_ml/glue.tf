# The Glue Data Catalog database of the learning Iceberg tables (DA-full §5.1.16, §5.1.1 item 13), its
# warehouse under the artifacts bucket. Tables are created by OFS/MF through pyiceberg (ICEBERG_CATALOG_TYPE).
resource "aws_glue_catalog_database" "iceberg" {
  name         = var.iceberg_database
  description  = "Iceberg v2 learning tables of ${local.name_prefix}"
  location_uri = "s3://${local.buckets["artifacts"]}/${var.iceberg_warehouse_prefix}"
}
