SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('rclone/v%') ESCAPE '\\', false);
