SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('rclone/v%') ESCAPE '\', false);
