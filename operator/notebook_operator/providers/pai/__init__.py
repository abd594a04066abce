"""Alibaba Cloud PAI-DSW 2022-01-01."""
