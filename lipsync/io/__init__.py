"""Input and output: ffmpeg media (video, images, encoding), sound and its features, frame
folders, offline speech."""
