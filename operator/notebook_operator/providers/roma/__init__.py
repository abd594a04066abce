"""Huawei Cloud ROMA Connect instance list (observe only)."""
