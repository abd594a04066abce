"""Huawei Cloud ModelArts notebooks (v1 `/notebooks`)."""
