"""Realistic demo and test data generators."""
