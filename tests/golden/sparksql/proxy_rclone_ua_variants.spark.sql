SELECT *
FROM websession
WHERE coalesce((lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('rclone/%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('APN/1.0 rclone/%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%|rclone/%') ESCAPE '\\') AND NOT coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('rclone/v%') ESCAPE '\\', false) AND NOT coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%-DEV%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%-beta.%') ESCAPE '\\', false), false);
