"""Huawei Cloud ModelArts DevEnviron (the old `/demanager/instances` API): list, start, stop."""
