"""rtbank: collect, store and share complete radiotherapy (DICOM-RT) datasets for multi-centre research."""

__version__ = "0.1.0"
