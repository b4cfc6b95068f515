"""The face stage: detection, the 68-point layout, tracking through a video, the track cache."""
