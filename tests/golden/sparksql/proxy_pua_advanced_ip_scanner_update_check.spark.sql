SELECT *
FROM websession
WHERE coalesce(lower(CAST(`Url` AS STRING)) LIKE lower('%/checkupdate.php%') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%lng=%') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%ver=%') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%beta=%') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%type=%') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%rmode=%') ESCAPE '\\' AND lower(CAST(`UrlQuery` AS STRING)) LIKE lower('%product=%') ESCAPE '\\', false);
