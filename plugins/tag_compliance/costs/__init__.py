"""Cost Explorer extraction into the lake's ``costs`` dataset."""
