"""Datasets (HDF5), collection from Gymnasium environments, and collection policies."""
