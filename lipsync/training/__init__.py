"""Training the sync model: the dataset of talking faces (face-tracked, offset-corrected by the
judge of `lipsync.eval`) and the trainer (`lipsync-train`). It sits above `lipsync.eval`."""
