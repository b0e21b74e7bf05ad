# escape=`

# Windows images use a backtick so that paths keep their backslashes.
FROM mcr.microsoft.com/windows/servercore:ltsc2022 AS base
FROM python:3.12-windowsservercore-ltsc2022 `
    AS build
RUN pip install `
    requests
COPY C:\app\ C:\app\
RUN dir C:\
FROM golang:1.26-windowsservercore-ltsc2022
FROM base
