SELECT *
FROM websession
WHERE coalesce((lower(CAST(`Url` AS STRING)) LIKE lower('%/rclone-chunked-upload-%') ESCAPE '\\' OR lower(CAST(`HttpRequestMethod` AS STRING)) = lower('PUT') AND lower(CAST(`UrlPath` AS STRING)) LIKE lower('%/uploadfile') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%nopartial=1%') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%mtime=%') ESCAPE '\\') AND NOT coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('%rclone%') ESCAPE '\\', false), false);
