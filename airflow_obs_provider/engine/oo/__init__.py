"""OpenObserve readers: bucket layout (local folder or S3), OO's file_list, and the HTTP search API.

The public interface is :mod:`airflow_obs_provider.engine.oo.source`.
"""
